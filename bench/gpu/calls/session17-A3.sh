#!/bin/sh
# Session 17 call A3: the ping-pong without turns (warpgroups issue as ready) (issues 6, 7). Cases:
# The variants (rowMax 'chain', turns false, pvHold) are in bench/gpu/calls/session17-variants.patch: `git apply` it before preparing (not kept: none was faster).
# `ATTN_CASES='^(flux2_single_fp8|flux2_single|flux2_single_fp8pv|flux2_single_fp8_free|flux2_single_free|flux2_single_fp8pv_free)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s17/cases3`. The harness twice (times, outputs for `attention.ts check`),
# then the SASS of every kernel (where ptxas put the wait for the P·V in flight).
# The same steps as call A2 (its script, with these cases and rounds).
C=${C:-.gpu/s17/cases3} ROUNDS=2 exec sh bench/gpu/calls/session17-A2.sh
