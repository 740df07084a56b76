#!/bin/sh
# Session 42, call A4: (1) bench/gpu/sfu_rates.cu: the exponentials' and conversions' rates on one SM and their SASS (sfu.txt);
# (2) the integer P·V's exponentials on f16 pairs (h2: ex2.approx.f16x2 of the row's pair of arguments converted to f16, the
# pair then the f16 P' the pack reads; an experiment on f2289bb) against f2289bb (b1), three rounds, SASS opcode counts.
# b1 prepared with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|qwen_image_t32_int8pv)$'; h2 with those and
# tiny_flux2_int8pv, tiny_qwen_image_mask_int8pv.
nvcc -O3 -arch=sm_90a -o /tmp/sfu bench/gpu/sfu_rates.cu && /tmp/sfu > "$OUT/sfu.txt" 2>&1
cuobjdump -sass /tmp/sfu | grep -E "Function|MUFU|F2FP|I2F|HADD2|F2F" | sed 's/^ *//' | sort | uniq -c | sort -rn | head -40 >> "$OUT/sfu.txt"
cat "$OUT/sfu.txt"
DIRS="b1:.gpu/v/b1 h2:.gpu/v/h2" ROUNDS=3 TIMEOUT_S=90 KEEP=h2 PORTABLE=1 SASS=1 sh bench/gpu/calls/attention-ab.sh
