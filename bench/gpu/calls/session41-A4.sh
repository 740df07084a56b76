#!/bin/sh
# Session 41, call A4: the epilogue's O staged in shared memory with a bulk copy a row (stagedOut) against HEAD
# (base41, baseq41). Folder so prepared with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv|qwen_image_t32_fp8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|qwen_image_mask|mistral_causal_gqa|tiny_flux2|flux2_single)$'.
DIRS="base:.gpu/v/base41 baseq:.gpu/v/baseq41 so:.gpu/v/so" ROUNDS=3 TIMEOUT_S=150 KEEP=so PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
