#!/bin/sh
# Session 11 call F1: the own FP8 GEMM against the bit-level simulation of the sm_90a tensor cores
# (compiler/quant/tensor-core.ts), with cuBLASLt's speed in the same process. Prepared here:
#   GEMM_VARIANTS=q192s4n,q192s4h,f192s4o32 npx tsx bench/gpu/gemm-own.ts prepare .gpu/F1/g      (every shape)
#   GEMM_SHAPES='^(flux img out|flux single out|qwen img mlp out \(b2\)|odd rows)$' \
#     GEMM_VARIANTS=p192s4x8o32,p192s4x8h npx tsx bench/gpu/gemm-own.ts prepare .gpu/F1/p          (promotion)
# then `npx tsx bench/gpu/gemm-own.ts check .gpu/F1/g OUT/g` (and p) on the samples that come back.
set -u
nvidia-smi --query-gpu=name,serial,driver_version,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
for d in g p; do
  mkdir -p /tmp/s/$d
  timeout 280 /tmp/go .gpu/F1/$d /tmp/s/$d > $OUT/$d.txt 2>&1; echo "$d exit $?"
  tar -cf $OUT/$d-samples.tar -C /tmp/s $d
  grep -E "^\|" $OUT/$d.txt | cut -c1-220
done
