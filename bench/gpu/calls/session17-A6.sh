#!/bin/sh
# Session 17 call A6: FP8 Q·Kᵀ in 128-key tiles with MMA row sums (exponentials under the warpgroup's own P·V) and a
# share of the exponentials by polynomial, against the default 192-key kernel (issues 6, 7). Cases:
# `ATTN_CASES='^(flux2_single_fp8|flux2_single_fp8_mma|flux2_single_fp8_bn128mma_poly[234])$' npx tsx test/gpu/attention.ts
#  prepare .gpu/s17/cases6`. The harness three times (times, outputs for `attention.ts check`), then the SASS.
# The same steps as call A2 (its script, with these cases and rounds).
C=${C:-.gpu/s17/cases6} ROUNDS=3 exec sh bench/gpu/calls/session17-A2.sh
