#!/bin/sh
# Session 18 call B15: the pack quantizing V itself (AttentionPack vquant=1: one CTA per (batch, kv head), two passes over
# its keys) against the pack + separate AttentionQuantizeV launch (issue 7). Code: bench/gpu/calls/session18-vquant-fold.patch (not kept). New: `ATTN_CASES='^(tiny_flux2_fp8pv|tiny_flux2_fp8pv_joint|tiny_qwen_image_mask_fp8pv|flux2_single_fp8pv|flux2_joint_fp8pv|qwen_image_t32_fp8pv|qwen_image_mask_fp8pv)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s18j`; before: call B11's .gpu/s18h (flux2_single_fp8pv_p2, qwen_image_t32_fp8pv_p2).
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
mkdir -p /tmp/o-new /tmp/o-old
for r in 1 2 3; do
  timeout 100 /tmp/ah .gpu/s18h /tmp/o-old > /tmp/h-old.txt 2>&1; echo "round $r old exit $?"; grep -E "^time (flux2_single_fp8pv_p2|qwen_image_t32_fp8pv_p2) " /tmp/h-old.txt | sed "s/^/old /"
  timeout 100 /tmp/ah .gpu/s18j /tmp/o-new > /tmp/h-new.txt 2>&1; echo "round $r new exit $?"; grep -E "^time" /tmp/h-new.txt | sed "s/^/new /"
done | tee $OUT/vquant-fold.txt
cp /tmp/h-new.txt $OUT/log.txt; cp /tmp/o-new/outputs.bin $OUT/outputs.bin
