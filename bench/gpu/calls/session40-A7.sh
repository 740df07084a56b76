#!/bin/sh
# Session 40, call A7 (GPU host): A6 again after its hang (the persistent ping-pong never freed the last tile's V stage, so the
# producer waited for it before the next item's tiles) and with the non-persistent kernels' K scales staged as before A6:
#   q   .gpu/v/q, `ATTN_CASES='^((flux2_single_(int8pv|fp8pv|int8)|qwen_image_t32_(fp8pv|int8pv))(_pers)?|(tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv|tiny_flux2_single|tiny_qwen_image_mask)_pers)$'`
#   t3  7b3c35a's integer kernels; old e92f92a's FP8 P·V one (as at 7b3c35a). Two rounds, 90 s a folder's run at most.
set -u
DIRS="t3:.gpu/v/t3 old:.gpu/v/old q:.gpu/v/q" KEEP=q ROUNDS=2 TIMEOUT_S=90 sh bench/gpu/calls/attention-ab.sh
