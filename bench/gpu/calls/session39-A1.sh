#!/bin/sh
# Session 39, call A1 (GPU host): where the ping-pong hands the tensor cores over (descriptor handOver 'max' / 'exp' against
# 'issue'), and the integer P·V with biased score accumulators (scoreBias), beside the FP8 P·V kernel, three rounds in one
# folder (.gpu/v/a: `ATTN_CASES='^(flux2_single_int8pv|flux2_single_fp8pv|qwen_image_t32_int8pv|tiny_qwen_image_mask_int8pv)(_h(max|exp)|_bias)?$'
# npx tsx test/gpu/attention.ts prepare .gpu/v/a`, its expected.json moved out), plus where ptxas put the exponentials.
set -u
DIRS="a:.gpu/v/a" ROUNDS=3 SASS=1 sh bench/gpu/calls/attention-ab.sh
cuobjdump -sass .gpu/v/a/kernels.cubin > /tmp/s.txt && python3 bench/gpu/sass_mufu_waits.py /tmp/s.txt --mix > "$OUT/mufu.txt"
