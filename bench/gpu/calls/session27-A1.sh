#!/bin/sh
# Session 27 call A1: f16 scores in the FP8 attention (issues 6, 7). Q·Kᵀ summed in f16 by the wgmma from codes 2^5 smaller
# (pack qkScaleShift 5) and the softmax on f16x2 pairs (AttentionDescriptor.scores 'f16'), beside the f32 kernel on the same
# inputs: Flux.2's single-stream and joint nodes. Cases: `ATTN_ACCEPT_SPILLS=1 ATTN_CASES='^flux2_(single|joint)_fp8pv(_f16|_f16lazy|_eager)?$'
# npx tsx test/gpu/attention.ts prepare .gpu/f16a` (f16lazy spills 16 bytes, the f32 eager kernel 148). Two rounds with 1 s of
# sustained energy each; outputs of round 1 kept for `attention.ts check`; the SASS of the attention kernels, summarised
# (bench/gpu/sass_mufu_waits.py; calls A1, E1 and T1 printed the same counts and trace from an inline copy, one line a kernel).
# The code: bench/gpu/calls/session27-f16scores.patch (`git apply` before preparing; not kept: slower, see bench/RESULTS.md).
# Calls E1 (D=.gpu/E27: session27-pack-early.patch, cases *_early) and T1 (D=.gpu/W3: session27-three-warpgroups.patch, cases
# *_w3, *_w3s6) ran this script on their own folders.
set -u
D=${D:-.gpu/f16a} E=${E:-1} T=${T:-200}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2; do
  ENERGY_S=$E timeout $T /tmp/ah $D $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
  grep -E "^(time|energy|unwritten)" $OUT/log-$r.txt | grep -v " pack"
  [ $r = 1 ] && mv $OUT/outputs.bin $OUT/outputs-1.bin
done
rm -f $OUT/outputs.bin; mv $OUT/outputs-1.bin $OUT/outputs.bin
cuobjdump -sass $D/kernels.cubin > /tmp/sass.txt 2>&1
python3 bench/gpu/sass_mufu_waits.py /tmp/sass.txt --mix --trace > $OUT/sass-summary.txt
cat $OUT/sass-summary.txt
