#!/bin/sh
# Session 40, call A3 (GPU host): the ping-pong turn's anchor (the last tile's P codes and l kept before the turn's barrier)
# against the kernels without it, three rounds alternating:
#   t3    7b3c35a: .gpu/v/t3, `ATTN_CASES='^(flux2_(single|joint)_int8pv|flux2_single_int8)$'`
#   an    the anchor: .gpu/v/an, `ATTN_CASES='^(flux2_(single|joint)_int8pv|flux2_single_fp8pv|flux2_single_int8|qwen_image_t32_int8pv|qwen_image_t32_fp8pv|tiny_flux2_int8pv|tiny_qwen_image_mask_int8pv)$'`
#   old   e92f92a (FP8 P·V as at 7b3c35a): .gpu/v/old;  oldq 1ae29e5: .gpu/v/oldq;  hq 7b3c35a: .gpu/v/hq `ATTN_CASES='^(qwen_image_t32_fp8pv)$'`
# Then, per kernel of t3 and an: the instructions between each turn's barrier (BAR.SYNC) and its first MMA.
set -u
DIRS="t3:.gpu/v/t3 an:.gpu/v/an old:.gpu/v/old oldq:.gpu/v/oldq hq:.gpu/v/hq" KEEP=an ROUNDS=3 SASS=1 sh bench/gpu/calls/attention-ab.sh
for d in t3 an old hq; do
  for k in $(grep -ho "attn_[0-9a-f]*(" .gpu/v/$d/unit.cu | tr -d '(' | sort -u); do
    cuobjdump -sass -fun $k .gpu/v/$d/kernels.cubin | grep -E "^\s+/\*[0-9a-f]{4,5}\*/" | awk -v n="$d $k" '{op=$2; if (op ~ /^@/) op=$3} op ~ /BAR.SYNC/ {b=NR; f=1; next} b && f && op ~ /GMMA/ {g = g " " NR-b; f=0} END {print n, "barrier->MMA:" g}'
  done
done | tee "$OUT/gaps.txt"
