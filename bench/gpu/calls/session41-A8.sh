#!/bin/sh
# Session 41, call A8: persistent launches (descriptor persistent; 28 bytes of spills accepted for the integer P·V kernel) against
# the non-persistent kernels at 5f4c3b6 (co) and rendered from this template (np: ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv)$').
# pers: ATTN_CASES='^(flux2_single_int8pv_pers|flux2_joint_int8pv_pers|flux2_single_fp8pv_pers)$'.
DIRS="co:.gpu/v/co np:.gpu/v/np pers:.gpu/v/pers" ROUNDS=3 TIMEOUT_S=120 KEEP=pers sh bench/gpu/calls/attention-ab.sh
