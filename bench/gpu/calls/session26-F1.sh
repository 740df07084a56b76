#!/bin/sh
# Session 26 call F1: the models' outputs after the FP8 scale's one spelling (dc_fp8_scale; new, HEAD) against the tree
# before it (old, 0b1595f), synthetic weights 42: session 15's G1 with no timing rounds (artifacts in .gpu/F1/art.tar.xz,
# the runtime of `npx tsx runtime/gpu/pack.ts` in .gpu/rt).
set -u
D=.gpu/F1 MODELS="flux qwen" VARIANTS="old new" ROUNDS=0 sh bench/gpu/calls/session15-G1.sh
