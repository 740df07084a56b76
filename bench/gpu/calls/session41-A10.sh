#!/bin/sh
# Session 41, call A10: at 5f4c3b6 (x1), four shared-memory stages for the integer P·V (its _hmax_st4 case) and the next wave's Q
# prefetched to L2 (x2: session41-prefetch.py), both folders prepared with
# ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_int8pv_hmax_st4|flux2_single_fp8pv)$'.
DIRS="x1:.gpu/v/x1 x2:.gpu/v/x2" ROUNDS=3 TIMEOUT_S=90 KEEP=x2 sh bench/gpu/calls/attention-ab.sh
