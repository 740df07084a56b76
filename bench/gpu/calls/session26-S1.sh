#!/bin/sh
# Session 26 call S1 (experiment, code at a3d94af, reverted after; hung: producer 32 + consumers 240 registers passed the 168 a thread the CTA has at launch, so the consumers' setmaxnreg never returned; timed out before the side case): does a side job in the FP8 attention's idle producer warps slow it? Flux.2's single-stream
# node (1 x 48 x 4608 x 128, FP8 Q·Kᵀ and P·V) as the models run it, against the same kernel whose producer warps 1-3 also code
# a bf16 [4608, 18432] matrix (Flux.2's single-block MLP activation) to e4m3 with per-row reciprocals, a slice a CTA
# (AttentionDescriptor.sideQuant, case flux2_single_fp8pv_side; its three buffers added to .gpu/S1/cases.txt by hand after
# `ATTN_CASES='^flux2_single_fp8pv(_side)?$' npx tsx test/gpu/attention.ts prepare .gpu/S1`). Two rounds, 2 s of energy each.
set -u
D=${D:-.gpu/S1} E=${E:-2} T=${T:-200}  # call S2: D=.gpu/S2 E=1 T=100
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl 2>&1 | grep -i error
for r in 1 2; do
  ENERGY_S=$E timeout $T /tmp/ah $D $OUT > $OUT/log-$r.txt 2>&1; echo "round $r rc $?"
  grep -E "^(time|energy|unwritten)" $OUT/log-$r.txt
done
rm -f $OUT/outputs.bin
