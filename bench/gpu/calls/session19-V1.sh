#!/bin/sh
# Session 19 call V1: V quantized inside the attention pack (a cluster of CTAs a kv head, attention_pack_v8.cu.njk)
# against the pack's bf16 Vt + AttentionQuantizeV (HEAD 55ef030), issue 7.
#  1. the attention harness on the FP8 P·V cases of both trees (outputs against fp32, Vs exact in the new one; timings):
#     new: `ATTN_CASES='^(tiny_flux2_fp8pv|tiny_flux2_fp8pv_joint|tiny_qwen_image_mask_fp8pv|flux2_single_fp8pv|flux2_joint_fp8pv|qwen_image_t32_fp8pv|qwen_image_mask_fp8pv)$'
#     npx tsx test/gpu/attention.ts prepare .gpu/v8`, old: the same in a worktree of 55ef030 into .gpu/v8old (expected.json moved aside);
#  2. the models, old and new artifacts (session 15's G1 script: outputs of new against old, step times alternating).
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
mkdir -p $OUT/new $OUT/old
for r in 1 2; do
  timeout 120 /tmp/ah .gpu/v8 $OUT/new > $OUT/new/log.txt 2>&1; echo "harness new $r exit $?"; grep -E "^time" $OUT/new/log.txt
  timeout 120 /tmp/ah .gpu/v8old $OUT/old > $OUT/old/log.txt 2>&1; echo "harness old $r exit $?"; grep -E "^time" $OUT/old/log.txt
done
rm -f $OUT/old/outputs.bin
D=.gpu/V1 MODELS="flux qwen" VARIANTS="old new" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh
