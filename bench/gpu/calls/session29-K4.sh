#!/bin/sh
# Session 29 call K4: the head's K block scales staged in shared memory once a CTA and read back each tile (no global
# pointer live across the loop), beside 568a4f4's __ldg per tile, for the 8-bit Q·Kᵀ kernels: the models' FP8 P·V (Flux.2
# single and joint, Qwen-Image's 32- and 64-token modules and the 256-token mask case), the integer P·V and int8 (issues 6,
# 7). Cases `ATTN_CASES='^(flux2_(single|joint)_fp8pv|qwen_image_t(32|64)_fp8pv|qwen_image_mask_fp8pv|flux2_single_int8pv|
# qwen_image_t32_int8pv|qwen_image_mask_int8)$'` prepared at this tree (.gpu/k4new) and in a worktree of 568a4f4
# (.gpu/k4old); alternating, three rounds; round 1's new outputs kept (checked here with `attention.ts check`).
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2 3; do
  for v in old new; do
    timeout 200 /tmp/ah .gpu/k4$v $OUT > $OUT/log-$v-$r.txt 2>&1; echo "round $r $v rc $?"
    grep -E "^time" $OUT/log-$v-$r.txt | grep " attention"
    grep -E "^unwritten" $OUT/log-$v-$r.txt | grep -v " 0$"
    [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-$v-1.bin
  done
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-new-1.bin $OUT/outputs.bin; rm -f $OUT/outputs-old-1.bin
