#!/bin/sh
# Session 42, call A2, three parts on one card:
# 1. the unit timeline of 1b56d4d's Flux.2 single kernels (FP8 and integer P·V) with the consumers' prologue marked (folder ut:
#    session41-utrace.py, then session42-uprologue.py; ATTN_CASES='^(flux2_single_fp8pv|flux2_single_int8pv)$'), one round;
# 2. 1b56d4d's kernels (eA, as in A1) sustained 3 s a case: board power and SM clock from NVML;
# 3. the scales by producer warp 1 (pS: Q's row scales and K's block scales written to shared memory by one producer warp while
#    Q's copy is in flight, its 32 arrivals on Q's barrier; the consumers load nothing) against eA; pS prepared with
#    ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv|qwen_image_t32_fp8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|tiny_qwen_image_mask_fp8pv)$'.
DIRS="ut:.gpu/v/ut" ROUNDS=1 TIMEOUT_S=90 KEEP=ut sh bench/gpu/calls/attention-ab.sh
ENERGY_S=3 DIRS="eA:.gpu/v/eA" ROUNDS=1 TIMEOUT_S=120 KEEP=eA sh bench/gpu/calls/attention-ab.sh
DIRS="eA:.gpu/v/eA pS:.gpu/v/pS" ROUNDS=3 TIMEOUT_S=90 KEEP=pS PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
