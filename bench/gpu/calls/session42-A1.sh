#!/bin/sh
# Session 42, call A1: the epilogue's inputs under the last P·V (eA: l over the quad and V's channel scales loaded between the
# last P·V's issue and its wait, instead of after it) and, on top, Q's copy issued before the CTA's barrier (eB), against
# 809632c (b0). b0 and eA prepared with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv)$';
# eB with those and tiny_flux2_int8pv, tiny_qwen_image_mask_int8pv, mistral_causal_gqa, qwen_image_mask (checked; its portable build too).
DIRS="b0:.gpu/v/b0 eA:.gpu/v/eA eB:.gpu/v/eB" ROUNDS=3 TIMEOUT_S=90 KEEP=eB PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
