#!/bin/sh
# Session 28 call T4 (issues 6, 7): 1. the last wave's piece count on Flux.2's FP8 P·V nodes: `ATTN_CASES=
# '^flux2_(single|joint)_fp8pv(_whole|_pieces[0-9]+)?$' npx tsx test/gpu/attention.ts prepare .gpu/pieces28` (whole units; 3, 4, 6
# (the default) and 12 pieces a tail unit), two rounds with 1 s of sustained energy each, round 1's outputs kept (checked afterwards
# with `attention.ts check`); 2. where the tree stands: session 27's F1 (`npx bench --no-baseline --iters 20`) on the artifacts
# compiled at this tree, in .gpu/T28 (flux-new, qwen-new), two rounds.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2; do
  ENERGY_S=1 timeout 150 /tmp/ah .gpu/pieces28 $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
  grep -E "^(time|energy)" $OUT/log-$r.txt | grep "attention "
  [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-1.bin
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-1.bin $OUT/outputs.bin
D=.gpu/T28 ROUNDS=2 sh bench/gpu/calls/session27-F1.sh
