#!/bin/sh
# Session 41, call A7: the staged O written back by coalesced 16-byte stores (each warp reading its rows back from shared
# memory, DP / 8 lanes a row) instead of a bulk copy a row (co), against 85c5ae1 (so2). co prepared with
# ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv|qwen_image_t32_fp8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|mistral_causal_gqa)$'.
DIRS="so2:.gpu/v/so2 co:.gpu/v/co" ROUNDS=3 TIMEOUT_S=150 KEEP=co PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
