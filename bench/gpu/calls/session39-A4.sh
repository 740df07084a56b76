#!/bin/sh
# Session 39, call A4 (GPU host): the integer P·V handing over at the maxima, alone, with every 4th or 8th column group's
# exponentials by polynomial, and with 128-key tiles (two P arrays), three rounds (.gpu/v/d:
# `ATTN_CASES='^(flux2_single_int8pv|qwen_image_t32_int8pv)_hmax(_poly4|_poly8|_bn128)?$' npx tsx test/gpu/attention.ts prepare .gpu/v/d`).
set -u
DIRS="d:.gpu/v/d" ROUNDS=3 sh bench/gpu/calls/attention-ab.sh
