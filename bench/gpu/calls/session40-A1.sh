#!/bin/sh
# Session 40, call A1 (GPU host): the integer P·V's row maxima over the s32 scores (intMax: each score converted to fp32
# where its exponential reads it) against HEAD's kernel (conversions before the maxima), three rounds alternating.
# Folders: .gpu/v/old (`ATTN_CASES='^(flux2_(single|joint)_int8pv|flux2_single_fp8pv)$'`, prepared at e92f92a in a
# worktree) and .gpu/v/new (`ATTN_CASES='^(flux2_(single|joint)_int8pv)$'`, the change), expected.json moved out.
set -u
DIRS="old:.gpu/v/old new:.gpu/v/new" ROUNDS=3 SASS=1 sh bench/gpu/calls/attention-ab.sh
cuobjdump -sass .gpu/v/new/kernels.cubin > /tmp/s.txt && python3 bench/gpu/sass_mufu_waits.py /tmp/s.txt --mix > "$OUT/mufu-new.txt"
cuobjdump -sass .gpu/v/old/kernels.cubin > /tmp/s.txt && python3 bench/gpu/sass_mufu_waits.py /tmp/s.txt --mix > "$OUT/mufu-old.txt"
