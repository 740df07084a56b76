#!/bin/sh
# Session 40, call A8 (GPU host): the lazy O rescale in two warp-uniform branches, rows g and g + 8 each skipped where none of
# the warp's moved its max (integer P·V's shifts, FP8 / bf16 P·V's multiplies), against 7d0a6ea (one branch for both), three
# rounds alternating. Both folders `ATTN_CASES='^(flux2_(single|joint)_int8pv|flux2_(single|joint)_fp8pv|qwen_image_t32_(fp8pv|int8pv)|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|flux2_single|qwen_image_mask)$'`:
# .gpu/v/hd at 7d0a6ea (a worktree), .gpu/v/rs with the change.
set -u
DIRS="hd:.gpu/v/hd rs:.gpu/v/rs" KEEP=rs ROUNDS=3 TIMEOUT_S=90 SASS=1 sh bench/gpu/calls/attention-ab.sh
