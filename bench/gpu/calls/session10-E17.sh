#!/bin/sh
# Session 10 call E17 (kernels of 5c22ef7 plus diagnostic switches, rendered in a scratch worktree): does the multicast
# cluster variant starve its 4-stage ring? 5 stages (one Y chunk buffer a warpgroup to make room): q192s5h1 plain,
# q192s5hc1 cluster with multicast, against q192s4h and E13's q192s4hc; Flux.2 image out and Qwen-Image MLP in.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 90 /tmp/go .gpu/E17/gemm5 > $OUT/gemm.txt 2>&1; echo "harness exit $?"
cat $OUT/gemm.txt | cut -c1-200
