#!/bin/sh
# Session 20 call R1: the gated residual add in the own GEMM's epilogue (passes/fuse-gemm-residual.ts), in the models
# (issue 7). Artifacts compiled here at HEAD before it (old: e0352d3) and with it (new), tarred as .gpu/R1/art.tar.xz
# (art/{flux,qwen}-{old,new}); the runtime of `npx tsx runtime/gpu/pack.ts` (.gpu/rt), carried. Session 15's G1 script:
# the new outputs against the old (the old row kernel kept r + gate · y in fp32, the epilogue rounds as the graph's Mul
# and Add: not the same bytes), then the step times alternating; then each variant once with --profile (every launch
# timed alone) into $OUT/profile-MODEL-VARIANT.json (session 19's V4 with D=.gpu/R1).
D=.gpu/R1 sh bench/gpu/calls/session19-V4.sh
