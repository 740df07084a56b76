#!/bin/sh
# Session 20 call R3: the residual epilogue's twin launches held to the simulation bit for bit (the GEMM harness,
# bench/gpu/gemm-own.ts prepare .gpu/S3: Qwen-Image's attention and MLP out with the 64-row text twin, two batches of
# 4096 / 32 rows; Flux.2's double-block out and MLP out with the 512-row twin; its single-block out), samples returned as
# one tarball for `gemm-own.ts check`; then the models again, old (e0352d3) and new (.gpu/R1/art.tar.xz), as R1.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
mkdir -p /tmp/samples
timeout 240 /tmp/go .gpu/S3 /tmp/samples > $OUT/gemm-log.txt 2>&1; echo "harness rc $?"
tar -cf $OUT/samples.tar -C /tmp samples
grep -E "^\| " $OUT/gemm-log.txt | cut -c1-200
sh bench/gpu/calls/session20-R1.sh
