#!/bin/sh
# Session 10 call E7: the GEMM harness after review (b2fdb2a: the scaled epilogue's bias drawn at the sums' scale,
# so a dropped or misread bias shows), scaled ping-pong with float32 and bf16 biases, the cooperative scaled kernel
# with bf16 and fp32 Y, the plain ping-pong (`GEMM_SHAPES='qwen img out|flux img out|odd|qwen img mlp in'
# GEMM_VARIANTS=q192s4h,q192s4b,f192s4o32h,f192s4h,q192s4 npx tsx bench/gpu/gemm-own.ts prepare .gpu/E7/gemmv`).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 300 /tmp/go .gpu/E7/gemmv > $OUT/gemm.txt 2>&1; echo "harness exit $?"
cat $OUT/gemm.txt | cut -c1-220
