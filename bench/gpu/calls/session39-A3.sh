#!/bin/sh
# Session 39, call A3 (GPU host): the integer P·V with its row sums by the MMA (lsum 'mma': 16 s8 ones rows in V's tiles,
# N = DP + 16), handing over at the maxima, against 'max' alone and the kernel as built, three rounds (.gpu/v/c:
# `ATTN_CASES='^(flux2_single_int8pv|qwen_image_t32_int8pv|tiny_qwen_image_mask_int8pv|tiny_flux2_int8pv)(_hmax|_hmax_sums)?$'
# npx tsx test/gpu/attention.ts prepare .gpu/v/c`), with SASS opcode counts.
set -u
DIRS="c:.gpu/v/c" ROUNDS=3 SASS=1 sh bench/gpu/calls/attention-ab.sh
