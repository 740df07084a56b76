#!/bin/sh
# Session 21 call V1: fuse-vquant (V's channel amax in the V projection GEMM's epilogue, the pack writing V8;
# AttentionQuantizeV's launch gone) in the models. Old (HEAD 23c969c) and new artifacts in .gpu/V1s21/art.tar.xz:
# session 19's V4 script (outputs of new against old, steps alternating, then each variant with --profile).
set -u
D=.gpu/V1s21 ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session19-V4.sh
