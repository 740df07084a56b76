#!/bin/sh
# Session 29 call G5: the ping-pong's second warpgroup idle through a last query tile of at most 64 rows (ghostTail: Qwen-Image's
# 4128 / 4160 tokens leave 32 / 64 rows in the 33rd tile), beside 7a7c71e's full tile (issues 6, 7). Cases
# `ATTN_CASES='^(qwen_image_t(32|64)_(fp8pv|int8pv|fp8|int8)|qwen_image_t32_fp8_serial|tiny_qwen_image_mask(_fp8pv)?|
# qwen_image_mask_fp8pv|flux2_single_fp8pv)$'` prepared at this tree (.gpu/g5new) and in a worktree of 7a7c71e (.gpu/g5old);
# alternating, two rounds with 1 s of sustained energy each; round 1's new outputs kept (checked with `attention.ts check`).
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2; do
  for v in old new; do
    ENERGY_S=1 timeout 250 /tmp/ah .gpu/g5$v $OUT > $OUT/log-$v-$r.txt 2>&1; echo "round $r $v rc $?"
    grep -E "^(time|energy)" $OUT/log-$v-$r.txt | grep " attention"
    grep -E "^unwritten" $OUT/log-$v-$r.txt | grep -v " 0$"
    [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-$v-1.bin
  done
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-new-1.bin $OUT/outputs.bin; rm -f $OUT/outputs-old-1.bin
