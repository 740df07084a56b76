#!/bin/sh
# Session 23 call H1: the attention pack with Q/K rounded to bf16 after the prologue and parked as bf16 in place of
# its staged rows (no V tile: 32 KB of shared memory a CTA instead of 66, 64 registers, 4 CTAs a SM instead of 3).
#  1. the pack harness (test/gpu/attention-pack.ts prepare .gpu/H1 /work/wt-old at a36f702): base = a36f702's pack,
#     new = this tree's, b4 = minBlocks 4; V's bytes must match the base's, Q/K's codes move (bf16 rounding);
#  2. the models, old (a36f702) and new, .gpu/H1/art.tar.xz: session 19's V4 (outputs of new against old, steps
#     alternating, ROUNDS rounds, each variant's profile).
set -u
L=$OUT/pack-log.txt
xz -dk .gpu/H1/kernels.cubin.xz 2>/dev/null
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda && mkdir -p /tmp/ph && /tmp/ah .gpu/H1 /tmp/ph > $L 2>&1; echo "pack harness rc $?"
grep -E "^time|device" $L | head -60
D=.gpu/H1 ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session19-V4.sh
