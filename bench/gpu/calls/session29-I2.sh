#!/bin/sh
# Session 29 call I2: the integer P·V attention's two conversions measured as variants (issue 6): u8 P packed through f16
# pairs (cvt.rn.f16x2.f32 + HADD2 1024 + one PRMT for four codes, against FADD 12582912 + three PRMT) and the s32 scores to
# fp32 by the float trick (IADD + FADD, against cvt.rn.f32.s32), beside the FP8 P·V on the same inputs. Cases:
# `ATTN_CASES='^(flux2_single_(int8pv|fp8pv)(_f16|_magic|_f16magic)?|qwen_image_mask_(int8pv|fp8pv)(_f16|_magic|_f16magic)?)$'
# npx tsx test/gpu/attention.ts prepare .gpu/pv29b` (expected.json moved out; checked afterwards). Three rounds with 1 s of
# sustained energy each (round 1's outputs kept), then each attention kernel's SASS opcode counts.
set -u
D=${D:-.gpu/pv29b}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2 3; do
  ENERGY_S=1 timeout 200 /tmp/ah $D $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
  grep -E "^(time|energy)" $OUT/log-$r.txt | grep " attention"
  [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-1.bin
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-1.bin $OUT/outputs.bin
cuobjdump -sass $D/kernels.cubin > /tmp/sass.txt 2>&1
python3 bench/gpu/sass_ops.py /tmp/sass.txt > $OUT/sass-ops.txt
cat $OUT/sass-ops.txt
