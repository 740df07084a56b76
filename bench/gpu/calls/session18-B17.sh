#!/bin/sh
# Session 18 call B17: FP8 P·V with its row sums by the P·V MMA (8 rows of e4m3 ones after each 64-key block's channel
# rows, N = DP + 8: l sums the rounded P) against the default (fp32 sums of the unrounded P) (issues 6, 7; timing first).
# Code: bench/gpu/calls/session18-pv8-lsum.patch (not kept). Cases: `ATTN_CASES='^(flux2_single_fp8pv|flux2_single_fp8pv_lsum.*|qwen_image_t32_fp8pv|qwen_image_t32_fp8pv_lsum)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18k`. Session 17's A2, three rounds, the SASS's MUFU between the waits.
C=${C:-.gpu/s18k} ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session17-A2.sh
python3 bench/gpu/sass_mufu_waits.py $OUT/sass.txt > $OUT/mufu.txt
cat $OUT/mufu.txt; rm -f $OUT/sass.txt; cp $OUT/harness3.txt $OUT/log.txt
