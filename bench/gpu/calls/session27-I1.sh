#!/bin/sh
# Session 27 call I1: the int8 Q/K scale's underflow edge decided as fp8Scale's (s8Scale: fp32(amax / 127), 1 where not
# positive; the pack alike): the int8 attention cases on the GPU, codes and scales against the reference
# (`ATTN_CASES='int8' npx tsx test/gpu/attention.ts prepare .gpu/I27`, expected.json kept here for `check`).
set -u
D=${D:-.gpu/I27}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
timeout 300 /tmp/ah $D $OUT > $OUT/log.txt 2>&1; echo "harness rc $?"
grep -E "^(time|unwritten)" $OUT/log.txt | grep -v " 0$" | grep -v "^time" ; grep -cE "^time" $OUT/log.txt
