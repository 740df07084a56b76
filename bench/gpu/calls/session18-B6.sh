#!/bin/sh
# Session 18 call B6: FP8 P·V with two P register arrays (descriptor pBuffers 2: the next tile's P never overwrites the
# registers the P·V in flight reads) against one (issue 6, 7). Cases: `ATTN_CASES='^(tiny_flux2_fp8|tiny_flux2_fp8pv|tiny_flux2_fp8pv_p2|flux2_single|flux2_single_fp8|flux2_single_fp8pv|flux2_single_fp8pv_p2|qwen_image_t32_fp8|qwen_image_t32_fp8pv|qwen_image_t32_fp8pv_p2)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18f`. Session 17's A2: the harness three times, then the SASS.
C=${C:-.gpu/s18f} ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session17-A2.sh
