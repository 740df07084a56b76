#!/bin/sh
# Session 20 call R2: the residual epilogue with four stages (the second half's R chunks loaded as the first half's
# stores are read). 1. The GEMM harness (bench/gpu/gemm-own.ts prepare .gpu/S2, ten cases: the models' residual shapes
# plain and with the epilogue, Qwen-Image's with the 64-row twin), samples kept for `gemm-own.ts check`, sustained
# timings (GEMM_SUSTAIN_S=2, the card at its cap). 2. The models, old (e0352d3) and new (.gpu/R1/art.tar.xz), as R1.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
mkdir -p $OUT/samples
GEMM_SUSTAIN_S=2 timeout 240 /tmp/go .gpu/S2 $OUT/samples > $OUT/gemm-log.txt 2>&1; echo "harness rc $?"
grep -E "^\| |sustained" $OUT/gemm-log.txt | cut -c1-200
sh bench/gpu/calls/session20-R1.sh
