#!/bin/sh
# Session 18 call B2: what the RoPE tables cost the attention pack (issue 7; timing only).
# The variants come from bench/gpu/calls/session18-rope-tables.patch (`git apply`; not kept): for v in base compact none,
# `ROPE_EXP=<v, empty for base> ATTN_CASES='^(flux2_single_fp8|qwen_image_t32_fp8|flux2_single_pack_pairs)$' npx tsx
#  test/gpu/attention.ts prepare .gpu/s18p-$v`. compact: the cos/sin tables read as if stored as [T][D/2] pairs
# (16 bytes each a row-thread instead of 32; the outputs are then wrong: timing only), none: no table read.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
mkdir -p /tmp/o-base /tmp/o-compact /tmp/o-none
for r in 1 2 3; do for v in base compact none; do
  timeout 100 /tmp/ah .gpu/s18p-$v /tmp/o-$v > /tmp/h-$v.txt 2>&1; echo "round $r $v exit $?"; grep -E "^time" /tmp/h-$v.txt | sed "s/^/$v /"
done; done | tee $OUT/pack-variants.txt
cp /tmp/h-base.txt $OUT/log.txt; mkdir -p /tmp/o-base; cp /tmp/o-base/outputs.bin $OUT/outputs.bin 2>/dev/null; ls -la $OUT
