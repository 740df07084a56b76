#!/bin/sh
# Session 42, call A5: the integer P·V's scores to fp32 without I2FP (a quarter-rate conversion, bench/gpu/sfu_rates.cu in A4),
# where the row maxima are over the s32 scores (intMax: Flux.2): fA, the float trick (bits s + 0x4B400000 = the float
# 12582912 + s, the offset folded into the exponent's FFMA constant); fB, the QK accumulators set to 0x4B400000 before the
# first wgmma (scale-d 1), so each score's bits are that float with no instruction a score. Against f2289bb (b1, as in A4).
# fA, fB prepared with ATTN_CASES='^(flux2_single_int8pv|flux2_joint_int8pv|qwen_image_t32_int8pv|tiny_flux2_int8pv)$'.
DIRS="b1:.gpu/v/b1 fA:.gpu/v/fA fB:.gpu/v/fB" ROUNDS=3 TIMEOUT_S=90 KEEP=fB SASS=1 sh bench/gpu/calls/attention-ab.sh
mv "$OUT/outputs-fB.bin" "$OUT/outputs-fB.keep"; DIRS="fA:.gpu/v/fA" ROUNDS=1 TIMEOUT_S=90 KEEP=fA sh bench/gpu/calls/attention-ab.sh > /dev/null; mv "$OUT/outputs-fB.keep" "$OUT/outputs-fB.bin"
