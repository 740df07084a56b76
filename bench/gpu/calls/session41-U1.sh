#!/bin/sh
# Session 41, call U1: the unit timeline with the finer epilogue marks (session41-utrace.py as committed in 85c5ae1's tree, before
# the staged epilogue) of the integer and FP8 P·V Flux.2 single kernels; folder ut2: ATTN_CASES='^(flux2_single_int8pv|flux2_single_fp8pv)$'.
# Summary: python3 bench/gpu/calls/session41-utrace-summary.py OUT/utrace-flux2_single_CASE.bin 1716 24
DIRS="ut2:.gpu/v/ut2" ROUNDS=1 TIMEOUT_S=100 sh bench/gpu/calls/attention-ab.sh
