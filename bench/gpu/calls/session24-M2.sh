#!/bin/sh
# Session 24 calls M2, M3 (M3: P=.gpu/P9, A=.gpu/S24c: V's channel scales a power of two too, af0de72): the session's packs with the power-of-two Q/K block scales (HEAD) against 41a6bd0 (issues 6, 7).
# (1) pack harness (.gpu/P8, base = 41a6bd0's pack): timings; V's bytes must be equal, Q/K codes and scales differ
# (the scales are powers of two now); (2) the models (.gpu/S24b/art.tar.xz: flux/qwen old = 41a6bd0, new = HEAD):
# outputs new against old, steps alternating, profiles (session 19's V4); (3) both against diffusers' bf16 models
# holding the same weights, one step (session 20's W1; qwen256 = the 256-token batch-1 module).
set -u
C=${P:-.gpu/P8} sh bench/gpu/calls/session24-P1.sh 2>&1 | grep -E "^time|^device|differing|harness rc"
grep -E "^same" $OUT/pack-log.txt | awk '$5 != 0' > $OUT/pack-differing.txt
D=${A:-.gpu/S24b} ROUNDS=2 sh bench/gpu/calls/session19-V4.sh 2>&1 | grep -E "vs|graph median|rc [1-9]"
mkdir -p $OUT/w && OUT=$OUT/w D=${A:-.gpu/S24b} MODELS="flux qwen" sh bench/gpu/calls/session20-W1.sh
cd $OUT && tar -czf all.tgz --exclude=all.tgz . && find . -type f ! -name all.tgz -delete
