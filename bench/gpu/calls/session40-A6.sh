#!/bin/sh
# Session 40, call A6 (GPU host): persistent attention launches (descriptor persistent: a CTA an SM, items back to back) against
# a CTA an item, on the same inputs (NAME_pers against NAME), and the kernels at 7b3c35a (t3, old), three rounds:
#   p   .gpu/v/p, `ATTN_CASES='^((flux2_(single|joint)_(int8pv|fp8pv)|qwen_image_t32_(fp8pv|int8pv)|qwen_image_mask_fp8pv|flux2_single_int8|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|tiny_flux2_single|tiny_qwen_image_mask)(_pers)?|tiny_mistral_causal_gqa|qwen_image_mask)$'`
#       (the persistent integer P·V kernels built with their 28 / 12 bytes of spills accepted for this call)
#   t3  7b3c35a's integer kernels; old e92f92a's FP8 P·V one (as at 7b3c35a)
set -u
DIRS="t3:.gpu/v/t3 old:.gpu/v/old p:.gpu/v/p" KEEP=p ROUNDS=3 PORTABLE=1 sh bench/gpu/calls/attention-ab.sh
