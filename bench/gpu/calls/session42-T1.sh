#!/bin/sh
# Session 42, call T1: the turn-level timeline (session42-ttrace.py at 1b56d4d) of the FP8 and integer P·V Flux.2 single kernels
# (folder tt: ATTN_CASES='^(flux2_single_fp8pv|flux2_single_int8pv)$'), beside the same kernels unmarked (eA, 1b56d4d's).
# Summary: python3 bench/gpu/calls/session42-ttrace-summary.py OUT/utrace-flux2_single_CASE.bin 1716
DIRS="eA:.gpu/v/eA tt:.gpu/v/tt" ROUNDS=1 TIMEOUT_S=90 KEEP=tt sh bench/gpu/calls/attention-ab.sh
