#!/bin/sh
# Session 29 call I1: the integer P·V attention (qk='int8' pv='int8': s8 Q·Kᵀ, u8 P · s8 V summed exactly in s32, the
# running max at integers so the sums rescale by shifts) beside the FP8 P·V (the models') and the int8 Q·Kᵀ with bf16 P·V,
# on the same inputs (issue 6). Cases: `ATTN_CASES='^(tiny_flux2_int8pv|flux2_(single|joint)_(int8pv|fp8pv|int8)|
# qwen_image_mask_(int8pv|fp8pv|int8))$' npx tsx test/gpu/attention.ts prepare .gpu/pv29` (expected.json moved out before
# carrying; checked here afterwards with `attention.ts check`). Two rounds with 1 s of sustained energy each (round 1's
# outputs kept), then the portable cubin (mma.sync, sm_100a's path) once.
set -u
D=${D:-.gpu/pv29}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2; do
  ENERGY_S=1 timeout 200 /tmp/ah $D $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
  grep -E "^(time|energy|unwritten)" $OUT/log-$r.txt | grep -v " pack"
  [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-1.bin
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-1.bin $OUT/outputs.bin
timeout 200 /tmp/ah $D $OUT kernels_portable.cubin outputs_portable.bin > $OUT/log_portable.txt 2>&1; echo "portable rc $?"
grep -E "^unwritten" $OUT/log_portable.txt
