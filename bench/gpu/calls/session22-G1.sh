#!/bin/sh
# Session 22 call G1: the preamble's sigmoid and tanh-GELU on single MUFU instructions (ex2/rcp .approx.ftz, GELU's
# constants folded: 7 instructions) — their accuracy against float64 (bench/gpu/activation_accuracy.cu), then
# Qwen-Image (CFG batch 2, 32-token module) at HEAD 1a40a74 (old), with the change (gelu), and with it and the row
# kernels' CTAs an SM capped at 8 instead of 4 (cap8: DC_ROW_CAP=8, an experiment, not in the tree): session 21's R1
# (outputs against old, steps alternating, three rounds, each variant's profile). Artifacts in .gpu/G1/art.tar.xz.
set -u
nvcc -O2 -arch=sm_90a -I templates -o /tmp/aa bench/gpu/activation_accuracy.cu && /tmp/aa | tee $OUT/accuracy.txt
D=.gpu/G1 VARIANTS="old gelu cap8" sh bench/gpu/calls/session21-R1.sh
