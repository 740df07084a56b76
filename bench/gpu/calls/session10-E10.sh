#!/bin/sh
# Ran at d60a967. bench/gpu/power_operands.cu has since been folded into bench/gpu/gemm_own.cu (GEMM_OPERANDS with GEMM_SUSTAIN_S; call E20).
# Session 10 call E10: does the operands' distribution move a power-capped FP8 GEMM? bench/gpu/power_operands.cu on
# Flux.2's single-block fused projection (4608 x 55296 x 6144) and Qwen-Image's batch-2 MLP in (8192 x 12288 x 3072):
# synthetic-weight codes (what --synthetic-weights draws), Gaussian codes (a per-channel quantized checkpoint), the GEMM
# harness's codes; 4 s each, two rounds, NVML power and SM clock between batches.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/pw bench/gpu/power_operands.cu -lcublasLt -ldl 2>&1 | grep -E "error"; [ -x /tmp/pw ] || exit 1
timeout 120 /tmp/pw 4608 55296 6144 4 > $OUT/flux.txt 2>&1; echo "flux exit $?"
timeout 120 /tmp/pw 8192 12288 3072 4 > $OUT/qwen.txt 2>&1; echo "qwen exit $?"
cat $OUT/flux.txt $OUT/qwen.txt
