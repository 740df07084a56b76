#!/bin/sh
# Session 40, call A2 (GPU host): the integer P·V after intMax (A1) against two more steps, three rounds alternating:
#   old   e92f92a (conversions before the maxima): .gpu/v/old, `ATTN_CASES='^(flux2_(single|joint)_int8pv|flux2_single_fp8pv)$'`
#   new   1ae29e5 (intMax): .gpu/v/new, `ATTN_CASES='^(flux2_(single|joint)_int8pv)$'`
#   t3    the s32 maxima in three-input steps: .gpu/v/t3, `ATTN_CASES='^(flux2_(single|joint)_int8pv|flux2_single_int8)$'`
#   dp    t3 + the rows' sums of the u8 codes by dp4a: .gpu/v/dp,
#         `ATTN_CASES='^(flux2_(single|joint)_int8pv|qwen_image_t32_int8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv)$'`
#   old8  e92f92a, s8 Q·Kᵀ with bf16 P·V: .gpu/v/old8, `ATTN_CASES='^(flux2_single_int8)$'`
#   oldq  1ae29e5: .gpu/v/oldq, `ATTN_CASES='^(qwen_image_t32_int8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv)$'`
# Outputs come back for dp (KEEP) and t3 (its int8 case checked too), and the SASS of dp's Flux.2 kernel.
set -u
DIRS="old:.gpu/v/old new:.gpu/v/new t3:.gpu/v/t3 dp:.gpu/v/dp old8:.gpu/v/old8 oldq:.gpu/v/oldq" KEEP=dp ROUNDS=3 SASS=1 sh bench/gpu/calls/attention-ab.sh
timeout 300 /tmp/ah .gpu/v/t3 "$OUT" > "$OUT/log-t3.txt" 2>&1; mv "$OUT/outputs.bin" "$OUT/outputs-t3.bin"
cuobjdump -sass -fun "${FUN:-attn_55fa0bd4359f698e}" .gpu/v/dp/kernels.cubin | grep -E "^\s+/\*[0-9a-f]{4}\*/" | sed -E 's/ +/ /g; s/ ;.*$//' > "$OUT/sass-dp-flux.txt"
wc -l "$OUT/sass-dp-flux.txt"
