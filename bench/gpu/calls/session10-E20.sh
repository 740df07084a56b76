#!/bin/sh
# Session 10 call E20: the GEMM harness with the operand distributions folded in (GEMM_OPERANDS, formerly
# bench/gpu/power_operands.cu): Qwen-Image's MLP in (8192 x 12288 x 3072), the scaled ping-pong with a bf16 bias
# and cuBLASLt fast, each with synthetic-weight, Gaussian and harness codes, 3 s each at the power cap.
# `GEMM_SHAPES='qwen img mlp in' GEMM_VARIANTS=q192s4h npx tsx bench/gpu/gemm-own.ts prepare .gpu/E20/g`.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
for o in synthetic gaussian harness; do
  GEMM_OPERANDS=$o GEMM_SUSTAIN_S=3 timeout 120 /tmp/go .gpu/E20/g > $OUT/gemm-$o.txt 2>&1; echo "$o exit $?"
  grep -E "^\| q|sustained" $OUT/gemm-$o.txt | cut -c1-200
done
