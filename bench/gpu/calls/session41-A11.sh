#!/bin/sh
# Session 41, call A11: the session's kernels (the staged epilogue, the next wave's Q prefetched to L2) against its start
# (s0: 2768a0f, prepared in a worktree with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|flux2_joint_fp8pv|qwen_image_t32_int8pv|qwen_image_t32_fp8pv)$');
# fin with the same cases and tiny_flux2_int8pv, tiny_qwen_image_mask_int8pv, mistral_causal_gqa, qwen_image_mask; its portable build once.
DIRS="s0:.gpu/v/s0 fin:.gpu/v/fin" ROUNDS=3 TIMEOUT_S=90 KEEP=fin PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
