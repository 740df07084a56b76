#!/bin/sh
# Session 20 call H1 (the final review): the GEMM harness (bench/gpu/gemm_own.cu) after its hash draws and bf16
# rounding became one function each, on call N1's cases (.gpu/S5: Qwen-Image's attention out + twin, plain and
# residual); samples as one tarball for `gemm-own.ts check` (the same draws: every output the simulation's).
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -iE "error|warning"
mkdir -p /tmp/samples
timeout 120 /tmp/go .gpu/S5 /tmp/samples > $OUT/gemm-log.txt 2>&1; echo "harness rc $?"
tar -cf $OUT/samples.tar -C /tmp samples
grep -E "^\| " $OUT/gemm-log.txt | cut -c1-200
