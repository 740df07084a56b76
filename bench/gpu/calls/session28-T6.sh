#!/bin/sh
# Session 28 call T6 (issues 6, 7): Qwen-Image's narrow last key tile at 32 and 64 text tokens (96 / 128 of the 22nd tile's 192
# keys) against the whole tile, `ATTN_CASES='^qwen_image_t(32|64)_fp8pv(_wholelast)?$' npx tsx test/gpu/attention.ts prepare
# .gpu/narrow28c`: three rounds with 1 s of sustained energy each.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2 3; do
  ENERGY_S=1 timeout 100 /tmp/ah .gpu/narrow28c $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
  grep -E "^(time|energy) .* attention " $OUT/log-$r.txt
  rm -f $OUT/outputs.bin
done
