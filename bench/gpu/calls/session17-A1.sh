#!/bin/sh
# Session 17 call A1: where the FP8 attention's warps wait, instruction by instruction (issue 6).
# Cases: `ATTN_CASES='^(flux2_single_fp8|flux2_single_fp8pv|flux2_single)$' npx tsx test/gpu/attention.ts
# prepare .gpu/s17/cases` (Flux.2's 1 x 48 x 4608 x 128 single-stream node: bf16, FP8 Q·Kᵀ, FP8 Q·Kᵀ + P·V).
# The harness alone (times), then Nsight Compute's warp-state sampling per SASS instruction of the FP8 Q·Kᵀ
# kernel (the models' default), printed as CSV. Call A5: `C=.gpu/s17/cases4 K=attn_67cb6ae3f1b2a4a0 sh bench/gpu/calls/session17-A1.sh`
# (A4's cases, the variants patch applied: the 128-key kernel with MMA row sums).
set -u
C=${C:-.gpu/s17/cases}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/o /tmp/o2; nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
timeout 120 /tmp/ah $C /tmp/o > $OUT/harness.txt 2>&1; echo "harness exit $?"; grep -E "^time" $OUT/harness.txt
NCU=/usr/local/cuda/bin/ncu
K=${K:-attn_9df54258f8cc7fe0}
timeout 300 $NCU --kernel-name $K --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight \
  -o /tmp/rep /tmp/ah $C /tmp/o2 > $OUT/ncu-run.txt 2>&1; echo "ncu exit $?"; tail -3 $OUT/ncu-run.txt
$NCU --import /tmp/rep.ncu-rep --page source --print-source sass --csv > $OUT/source.csv 2> $OUT/source.err; echo "source exit $?"; head -c 600 $OUT/source.err
$NCU --import /tmp/rep.ncu-rep --page details > $OUT/details.txt 2>&1
wc -c $OUT/*
