#!/bin/sh
# Session 10 call E16 (kernels from 5c22ef7 plus a diagnostic switch, rendered in a scratch worktree): is the cluster
# variant's 2x the cluster launch and pair order, or the multicast and its cross-CTA stage release? q192s4h plain,
# q192s4hn: clusters of two and pairs of row tiles but each CTA loads its whole W tile and releases only its own
# stages (no multicast), q192s4hc: E13's multicast variant; Flux.2 image out and Qwen-Image MLP in.
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 90 /tmp/go .gpu/E16/gemmn > $OUT/gemm.txt 2>&1; echo "harness exit $?"
cat $OUT/gemm.txt | cut -c1-200
