#!/bin/sh
# Session 21 call P1: the attention pack with its RoPE table rows prefetched into L1 a pass ahead (prefetch.global.L1;
# issue 7), against HEAD bf39723's pack. Prepared with ATTN_CASES='^(flux2_single_fp8|qwen_image_t32_fp8)$' npx tsx
# test/gpu/attention.ts prepare .gpu/P1{base,new} (base in a worktree at bf39723); three rounds alternating, the
# outputs compared byte for byte.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
for r in 1 2 3; do for v in base new; do
  mkdir -p /tmp/o-$v
  timeout 100 /tmp/ah .gpu/P1$v /tmp/o-$v > /tmp/h-$v.txt 2>&1; echo "round $r $v exit $?"; grep -E "^time" /tmp/h-$v.txt | sed "s/^/$v /"
done; done | tee $OUT/pack-prefetch.txt
for f in /tmp/o-base/*; do cmp $f /tmp/o-new/$(basename $f) && echo "same $(basename $f)"; done | tee -a $OUT/pack-prefetch.txt
cp /tmp/h-new.txt $OUT/log-new.txt
