#!/bin/sh
# Session 18 call B4: where the attention pack's warps wait, instruction by instruction (issue 7): Nsight Compute on
# Flux.2's single-stream FP8 pack (B2's base cases, .gpu/s18p-base; the pack's code is HEAD's). Session 17's A1 with C and K.
C=.gpu/s18p-base K=attnpack_dee7b2ee326fcebf sh bench/gpu/calls/session17-A1.sh
