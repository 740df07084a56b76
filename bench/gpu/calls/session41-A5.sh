#!/bin/sh
# Session 41, call A5: the next wave's Q rows prefetched to L2 by each CTA's producer (pf) against 85c5ae1 (so2, the staged
# epilogue), both prepared with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv)$';
# and the unit timeline at 85c5ae1 (ut3: ATTN_CASES='^(flux2_single_int8pv|flux2_single_fp8pv)$' after session41-utrace.py).
DIRS="so2:.gpu/v/so2 pf:.gpu/v/pf ut3:.gpu/v/ut3" ROUNDS=3 TIMEOUT_S=150 KEEP=pf sh bench/gpu/calls/attention-ab.sh
