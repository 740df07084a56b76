#!/bin/sh
# Session 10 call E4: the own GEMM on thin text streams (Flux.2's 512 text tokens over N = 6144, Qwen-Image's
# 256-token module), scaled with a bf16 bias: ping-pong 128x192 (q192s4h) against cooperative 128x192 / 128x256
# (f192s4h, f256s4h), against cuBLASLt (`GEMM_SHAPES='txt|odd' GEMM_VARIANTS=q192s4h,f192s4h,f256s4h npx tsx
# bench/gpu/gemm-own.ts prepare .gpu/E4/gemmthin`).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 200 /tmp/go .gpu/E4/gemmthin > $OUT/gemm.txt 2>&1; echo "harness exit $?"
cat $OUT/gemm.txt | cut -c1-220
