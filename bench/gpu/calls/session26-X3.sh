#!/bin/sh
# Session 26 call X3 (code at 850d611; reverted after): the own GEMM quantizing its bf16 X on load, second form (gemm.ts xq: the consumer codes each 64-deep
# K block of X into an e4m3 tile in shared memory, one of two, which its wgmma read by descriptor; 4-6 stages of 64) against
# the plain FP8 GEMM on Flux.2's single-block out projection and Qwen-Image's MLP out. .gpu/X3/{flux,qwen} from
# `npx tsx bench/gpu/gemm-own.ts prepare` (GEMM_SHAPES / GEMM_VARIANTS in RESULTS.md); samples for `gemm-own.ts check`,
# sustained 2 s at the cap.
set -u
D=.gpu/X3 sh bench/gpu/calls/session26-X1.sh
