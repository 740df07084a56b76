#!/bin/sh
# Session 26 call S2 (experiment, code at a3d94af, reverted after; S1 hung: producer 32 + consumers 240 passed the CTA's registers at launch, 168 a thread, so the consumers' setmaxnreg never returned): does a side job in the FP8 attention's idle producer warps slow it? Flux.2's single-stream
# node (1 x 48 x 4608 x 128, FP8 Q·Kᵀ and P·V) as the models run it, against the same kernel whose producer warps 1-3 also code
# a bf16 [4608, 18432] matrix (Flux.2's single-block MLP activation) to e4m3 with per-row reciprocals, a slice a CTA
# (AttentionDescriptor.sideQuant, case flux2_single_fp8pv_side; its three buffers added to .gpu/S2/cases.txt by hand after
# `ATTN_CASES='^flux2_single_fp8pv(_side)?$' npx tsx test/gpu/attention.ts prepare .gpu/S2`). Two rounds, 1 s of energy each; producer 40 and consumers 232 registers in the side variant.
set -u
D=.gpu/S2 E=1 T=100 sh bench/gpu/calls/session26-S1.sh
