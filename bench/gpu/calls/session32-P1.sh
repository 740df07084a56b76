#!/bin/sh
# Session 32 call P1 (issues 6, 7): the attention harness after the int8 pack computes K's block scale once (not once a
# pass), both cubins, on the card lent (an H200 this session): .gpu/p32 from
# `ATTN_CASES='^(tiny_flux2_int8|tiny_qwen_image_mask_int8|tiny_qwen_image_mask_int8pv|flux2_single_int8|flux2_single_int8pv|qwen_image_t32_int8pv|flux2_single_fp8pv)$'
# npx tsx test/gpu/attention.ts prepare .gpu/p32` (expected.json moved out before carrying), checked here with
# `attention.ts check .gpu/p32 OUT -p32` and `-p32-portable`; two rounds of timings.
DIRS="p32:.gpu/p32" ROUNDS=2 PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
