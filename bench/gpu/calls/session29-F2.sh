#!/bin/sh
# Session 29 call F2 (issues 6, 7): 1. the masked int8 kernels after fb267ff's review mend (a group's K scale block by index):
# `ATTN_CASES='^(qwen_image_t32_int8(pv)?|tiny_qwen_image_mask_int8(pv)?|qwen_image_mask_int8(pv)?|qwen_image_t32_fp8pv|
# flux2_single_fp8pv)$' npx tsx test/gpu/attention.ts prepare .gpu/i4`, one run (outputs checked with `attention.ts check`);
# 2. where the tree stands: session 27's F1 (`npx bench --no-baseline --iters 20`) on artifacts compiled at fb267ff, in
# .gpu/F29 (flux-new, qwen-new), one round.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
timeout 100 /tmp/ah .gpu/i4 $OUT > $OUT/log.txt 2>&1; echo "harness rc $?"
grep -E "^time" $OUT/log.txt | grep " attention"
D=.gpu/F29 ROUNDS=1 sh bench/gpu/calls/session27-F1.sh
