#!/bin/sh
# Session 39, call F1 (GPU host): (1) the hand-over at the maxima against after the issue on the default FP8 P·V kernels
# and on the s8 Q·Kᵀ (bf16 P·V) and bf16 ones of both models, three rounds (.gpu/v/f: `ATTN_CASES='^(qwen_image_mask_fp8pv|
# qwen_image_t64_fp8pv|qwen_image_t32_fp8pv|flux2_single_fp8pv|flux2_joint_int8|qwen_image_mask_int8|qwen_image_t32_int8|
# flux2_joint|qwen_image_mask)_h(issue|max)$' npx tsx test/gpu/attention.ts prepare .gpu/v/f`); (2) the default's steps
# ("def", at e54801d) against the same with every 192-key FP8 P·V kernel handing over at its maxima ("fmax": e54801d with
# the descriptor's rule widened to `d.bn === 192`, not committed): Flux.2 1024x1024 with 512 text tokens, Qwen-Image batch
# 2 with 32 text tokens (E1's compile commands; .gpu/F1s/art.tar.xz), session 15's G1, three rounds.
set -u
DIRS="f:.gpu/v/f" ROUNDS=3 sh bench/gpu/calls/attention-ab.sh
D=.gpu/F1s MODELS="flux qwen" VARIANTS="def fmax" ROUNDS=3 sh bench/gpu/calls/session15-G1.sh
