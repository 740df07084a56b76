#!/bin/sh
# Ran at 5c22ef7 (the cluster variant, reverted after this call and E14-E15: correct but 1.8-2x slower).
# Session 10 call E13: the own GEMM in clusters of two CTAs sharing the W tile by TMA multicast (variant suffix c)
# against the plain ping-pong and cuBLASLt fast, scaled with a bf16 bias: first the check and short timings
# (timeout 60 s: a hang would show here), then at the power cap (GEMM_SUSTAIN_S=3, NVML power and clock).
# `GEMM_SHAPES='qwen img|flux single fused in|flux img out|odd' GEMM_VARIANTS=q192s4h,q192s4hc npx tsx
# bench/gpu/gemm-own.ts prepare .gpu/E13/gemmc`.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 60 /tmp/go .gpu/E13/gemmc > $OUT/gemm.txt 2>&1; rc=$?; echo "harness exit $rc"
cat $OUT/gemm.txt | cut -c1-220
[ $rc = 0 ] || exit 1
GEMM_SUSTAIN_S=3 timeout 300 /tmp/go .gpu/E13/gemmc > $OUT/sustained.txt 2>&1; echo "sustained exit $?"
grep sustained $OUT/sustained.txt
