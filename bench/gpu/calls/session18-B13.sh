#!/bin/sh
# Session 18 call B13: bf16 P·V with two P arrays in 128-key tiles (S 64 + O 68 + 2 x 32 registers), s8 and e4m3 Q·Kᵀ,
# MUFU or a quarter of the exponentials by polynomial, beside one P array and the 192-key defaults (issue 6: the s8 recipe
# is the one that meets its 3e-2). The variant code: bench/gpu/calls/session18-bf16p2.patch (`git apply`).
# Cases: `ATTN_CASES='^(flux2_single|flux2_single_int8|flux2_single_fp8|flux2_single_(int8|fp8)_b128.*)$' npx tsx
#  test/gpu/attention.ts prepare .gpu/s18i`. Session 17's A2: the harness three times, the SASS's MUFU between the waits.
C=${C:-.gpu/s18i} ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session17-A2.sh
python3 bench/gpu/sass_mufu_waits.py $OUT/sass.txt > $OUT/mufu.txt
cat $OUT/mufu.txt; rm -f $OUT/sass.txt; cp $OUT/harness3.txt $OUT/log.txt
