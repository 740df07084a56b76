#!/bin/sh
# Session 42, call A3: the scales by producer warp 1 for the integer kernels only (pI: qk='int8'; the FP8 kernels render as at
# 1b56d4d, checked over Flux.2 and Qwen-Image) against 1b56d4d (eA, as in A1), first sustained 3 s a case (NVML board power
# and SM clock), then three alternating rounds. pI prepared with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|
# qwen_image_t32_int8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|qwen_image_mask_int8|tiny_qwen_image_mask_int8)$'.
ENERGY_S=3 DIRS="eA:.gpu/v/eA pI:.gpu/v/pI" ROUNDS=1 TIMEOUT_S=150 KEEP=none sh bench/gpu/calls/attention-ab.sh
DIRS="eA:.gpu/v/eA pI:.gpu/v/pI" ROUNDS=3 TIMEOUT_S=90 KEEP=pI PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
