#!/bin/sh
# Session 28 call T1: the attention's last wave split over key ranges (AttentionDescriptor.tailPieces; Flux.2's 1728 units as
# 1716 whole CTAs and 12 x 6 pieces that merge their partial O, m and l) (issues 6, 7).
#  1. The attention harness on `ATTN_CASES='^(flux2_(single|joint)(_fp8pv(_whole)?|_int8|_fp8)?|qwen_image_t32_fp8pv|tiny_flux2_fp8pv)$'
#     npx tsx test/gpu/attention.ts prepare .gpu/tail28` (expected.json moved out before carrying; checked here afterwards
#     with `attention.ts check`): every Flux.2 case but *_whole takes the pieces; two rounds with 1 s of sustained energy each,
#     round 1's outputs kept.
#  2. The Flux.2 step, artifacts compiled at HEAD (flux-old, one CTA a unit) and at this tree (flux-new) in .gpu/T28/art.tar.xz:
#     session 15's G1 (outputs of new against old, then the step alternating, 3 rounds).
set -u
D=${D:-.gpu/tail28}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2; do
  ENERGY_S=1 timeout 200 /tmp/ah $D $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
  grep -E "^(time|energy|unwritten)" $OUT/log-$r.txt | grep -v " pack"
  [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-1.bin
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-1.bin $OUT/outputs.bin
D=.gpu/T28 MODELS=flux VARIANTS="old new" ROUNDS=3 sh bench/gpu/calls/session15-G1.sh
