#!/bin/sh
# Session 10 call E5: the own GEMM's tile order: 4, 8 (default), 16 or 32 row tiles a group, scaled with a bf16 bias,
# Qwen-Image's image GEMMs and Flux.2's image MLP in, against cuBLASLt (`GEMM_SHAPES='qwen img|flux img mlp in'
# GEMM_VARIANTS=q192s4h,q192s4hg4,q192s4hg16,q192s4hg32 npx tsx bench/gpu/gemm-own.ts prepare .gpu/E5/gemmg`).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 300 /tmp/go .gpu/E5/gemmg > $OUT/gemm.txt 2>&1; echo "harness exit $?"
cat $OUT/gemm.txt | cut -c1-220
