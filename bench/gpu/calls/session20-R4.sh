#!/bin/sh
# Session 20 call R4: the residual epilogue's second-half R chunks each on its own barrier (the second half starts on its
# first chunk while the last is still coming), against ba97e4e's one barrier for the three. 1. The GEMM harness
# (.gpu/S4: plain and residual, Flux.2 single out, Qwen-Image's out and MLP out with the 64-row twin, Flux.2's img out with
# the 512-row twin), samples as one tarball for `gemm-own.ts check`, sustained timings; 2. the models, old (ba97e4e) and
# new (.gpu/R4/art.tar.xz), as R1.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
mkdir -p /tmp/samples
GEMM_SUSTAIN_S=2 timeout 240 /tmp/go .gpu/S4 /tmp/samples > $OUT/gemm-log.txt 2>&1; echo "harness rc $?"
tar -cf $OUT/samples.tar -C /tmp samples
grep -E "^\| " $OUT/gemm-log.txt | cut -c1-200
D=.gpu/R4 MODELS="flux qwen" VARIANTS="old new" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh
