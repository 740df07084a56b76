#!/bin/sh
# Session 9 call D1: attention kernels with a partial last key tile in the ping-pong (Qwen-Image at 32 / 64
# text tokens) beside the serial kernel they had, plus the tiny fixtures' attentions (now ping-pong, 192-key
# tiles, poly4, partial last tile) and the 256-token / Flux.2 kernels as references; sm_90a and portable.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda || exit 1
timeout 120 /tmp/ah .gpu/D1/attn $OUT > $OUT/log.txt 2>&1; echo "harness exit $?"
timeout 120 /tmp/ah .gpu/D1/attn $OUT kernels_portable.cubin outputs_portable.bin > $OUT/log_portable.txt 2>&1; echo "portable exit $?"
timeout 120 /tmp/ah .gpu/D1/attn $OUT > $OUT/log2.txt 2>&1; echo "harness round 2 exit $?"
grep -E "^(time|unwritten)" $OUT/log.txt | grep -E "time|unwritten [1-9]"; echo; grep -E "^time" $OUT/log2.txt | grep -E "qwen|flux"; grep -E "^unwritten [^ ]+ [1-9]" $OUT/log_portable.txt; tail -1 $OUT/log_portable.txt
