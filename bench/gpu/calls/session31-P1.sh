#!/bin/sh
# Session 31 call P1 (issue 6): the attention harness after the kScale='token' deletion (2c30152), both cubins: .gpu/post from
# `ATTN_CASES='^(tiny_flux2_int8|tiny_qwen_image_mask_int8|tiny_qwen_image_mask_int8pv|flux2_single_int8pv|qwen_image_t32_int8pv|flux2_single_fp8pv)$'
# npx tsx test/gpu/attention.ts prepare .gpu/post` (expected.json moved out before carrying), checked here with
# `attention.ts check .gpu/post OUT -post` and `-post-portable`.
DIRS="post:.gpu/post" ROUNDS=1 PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
