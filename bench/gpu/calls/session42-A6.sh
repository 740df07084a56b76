#!/bin/sh
# Session 42, call A6 (the variant: git apply bench/gpu/calls/session42-intmax-masked.patch): the integer P·V's maxima over its s32 scores (intMax) where a key mask reaches only the first tile and
# the last tile is partial (Qwen-Image at 32 text tokens: the peeled first tile in fp32, the loop's tiles over s32 with the
# missing keys at INT_MIN; qm) against 1978f05 (qb). qb prepared with ATTN_CASES='^(qwen_image_t32_int8pv|qwen_image_t32_fp8pv)$',
# qm with those and tiny_qwen_image_mask_int8pv, qwen_image_mask_int8pv, tiny_flux2_int8pv (checked; its portable build too).
DIRS="qb:.gpu/v/qb qm:.gpu/v/qm" ROUNDS=3 TIMEOUT_S=90 KEEP=qm PORTABLE=1 SASS=1 sh bench/gpu/calls/attention-ab.sh
