#!/bin/sh
# Session 10 call E14 (at 5c22ef7): is the cluster variant's 2x a second wave of clusters? The same kernels as E13 (Flux.2 image out,
# Qwen-Image MLP in) launched with persistent grids of 132 down to 64 CTAs (cases.txt edited from E13's).
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 90 /tmp/go .gpu/E14/gemmc > $OUT/gemm.txt 2>&1; echo "harness exit $?"
cat $OUT/gemm.txt | cut -c1-200
