#!/bin/sh
# Session 41, call A1: the integer P·V kernel at HEAD with four shared-memory stages beside three, and a unit-level
# timeline (bench/gpu/calls/session41-utrace.py) of the integer and FP8 P·V Flux.2 single kernels.
# Folders: .gpu/v/base41 prepared with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|flux2_single_int8pv_hmax_st4)$',
# .gpu/v/ut41 with ATTN_CASES='^(flux2_single_int8pv|flux2_single_fp8pv)$' after session41-utrace.py in its first form (16 slots a
# CTA, no marks inside the epilogue; call U1 repeats the timeline with the committed form).
DIRS="base:.gpu/v/base41 ut:.gpu/v/ut41" ROUNDS=3 TIMEOUT_S=150 KEEP=base sh bench/gpu/calls/attention-ab.sh
