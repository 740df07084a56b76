#!/bin/sh
# Session 40, call A5 (GPU host): a unit's fixed cost. The integer P·V at 2304, 4608 and 9216 tokens (Flux.2 single-stream
# attention with 1792 / 4096 / 8704 image tokens and 512 text tokens; 12 / 24 / 48 key tiles a unit), and FP8 P·V at 4608,
# at 7b3c35a: .gpu/v/n, `ATTN_CASES='^(flux2_single_int8pv(_n2304|_n9216)?|flux2_single_fp8pv)$'`, three rounds.
set -u
DIRS="n:.gpu/v/n" ROUNDS=3 sh bench/gpu/calls/attention-ab.sh
