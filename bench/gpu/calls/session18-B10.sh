#!/bin/sh
# Session 18 call B10: the default FP8 P·V kernel (two P arrays, 192-key tiles where 192 divides the keys) against the same
# in 128-key tiles (issues 6, 7). Cases: `ATTN_CASES='^(flux2_single|flux2_single_fp8pv_p2.*|qwen_image_t32_fp8|qwen_image_t32_fp8pv_p2.*)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18g`. Session 17's A2: the harness three times, then the SASS.
C=${C:-.gpu/s18g} ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session17-A2.sh
