#!/bin/sh
# Session 18 call B11: the default FP8 P·V kernel (two P arrays) with its row maxima as running chains, its row sums as two
# running chains a row, both, or 128-key tiles (issues 6, 7); variants from bench/gpu/calls/session18-chains.patch.
# Cases: `ATTN_CASES='^(flux2_single_fp8pv_p2.*|qwen_image_t32_fp8pv_p2.*)$' npx tsx test/gpu/attention.ts prepare .gpu/s18h`.
# Session 17's A2: the harness three times, then the SASS.
C=${C:-.gpu/s18h} ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session17-A2.sh
