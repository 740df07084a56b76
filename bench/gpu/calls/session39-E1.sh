#!/bin/sh
# Session 39, call E1 (GPU host): (1) the hand-over at the maxima against right after the issue ('issue', the way before
# c11f1b9) on more attention nodes, two rounds (.gpu/v/e: `ATTN_CASES='^(flux2_single_int8pv|qwen_image_t32_int8pv|
# flux2_joint_int8pv|qwen_image_mask_int8pv|flux2_single|flux2_single_int8|qwen_image_t32_fp8pv|flux2_joint_fp8pv|
# tiny_flux2_int8pv)_h(issue|max)$' npx tsx test/gpu/attention.ts prepare .gpu/v/e`); (2) the steps with the policy
# {"attention": "int8-pv"} compiled at b23adb1 ("iold", hand-over after the issue) and at c11f1b9 ("inew", at the maxima),
# beside the default at c11f1b9 ("def"): Flux.2 1024x1024 with 512 text tokens, Qwen-Image batch 2 with 32 text tokens
# (`npx compile bundled:flux2_dev --target h100 --size 1024x1024 --shape txt_tokens=512 [--policy pv.json]`,
# `npx compile bundled:qwen_image --target h100 --batch 2 --text-length 32 [--policy pv.json]`, in .gpu/E1/art.tar.xz),
# session 15's G1: outputs against def, then the steps alternating, two rounds.
set -u
DIRS="e:.gpu/v/e" ROUNDS=2 sh bench/gpu/calls/attention-ab.sh
D=.gpu/E1 MODELS="flux qwen" VARIANTS="def iold inew" ROUNDS=2 sh bench/gpu/calls/session15-G1.sh
