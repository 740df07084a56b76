#!/bin/sh
# Session 29 call I3: every int8 attention case at 568a4f4 (.gpu/i3new: `ATTN_CASES='int8' npx tsx test/gpu/attention.ts
# prepare`, s8 Q·Kᵀ with bf16 P·V and the integer P·V, Q's row factors now read back from shared memory each tile) checked,
# and the int8 kernels' speed against 128b012's (.gpu/i3old: the same four cases prepared in a worktree of it), alternating,
# three rounds (issue 6). expected.json moved out before carrying; checked here afterwards with `attention.ts check`.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2 3; do
  for v in old new; do
    timeout 200 /tmp/ah .gpu/i3$v $OUT > $OUT/log-$v-$r.txt 2>&1; echo "round $r $v rc $?"
    grep -E "^time" $OUT/log-$v-$r.txt | grep " attention"
    grep -E "^unwritten" $OUT/log-$v-$r.txt | grep -v " 0$"
    [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-$v-1.bin
  done
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-new-1.bin $OUT/outputs.bin; rm -f $OUT/outputs-old-1.bin
timeout 200 /tmp/ah .gpu/i3new $OUT kernels_portable.cubin outputs_portable.bin > $OUT/log_portable.txt 2>&1; echo "portable rc $?"
