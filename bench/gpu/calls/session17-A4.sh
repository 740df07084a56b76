#!/bin/sh
# Session 17 call A4: the registers of the P·V in flight held live through the softmax (pvHold) (issues 6, 7). Cases:
# The variants (rowMax 'chain', turns false, pvHold) are in bench/gpu/calls/session17-variants.patch: `git apply` it before preparing (not kept: none was faster).
# `ATTN_CASES='^(flux2_single_fp8|flux2_single|flux2_single_fp8pv|flux2_single_fp8_bn128|flux2_single_fp8_mma)(_hold|_direct_hold)?$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s17/cases4`. The harness twice (times, outputs for `attention.ts check`),
# then the SASS of every kernel (where ptxas put the wait for the P·V in flight).
# The same steps as call A2 (its script, with these cases and rounds).
C=${C:-.gpu/s17/cases4} ROUNDS=3 exec sh bench/gpu/calls/session17-A2.sh
