#!/bin/sh
# Session 27 call P1: where the attention pack spends its instructions (issue 7). Pack harness (PACK_SKIP=registers,unstaged,
# persist,parkPersist,b4 npx tsx test/gpu/attention-pack.ts prepare .gpu/P27: the packs the models run), twice; then Nsight
# Compute on Flux.2's single-stream pack (K): speed of light, warp states, instruction mix, memory tables, and the per-instruction
# counts with the CUDA source beside the SASS (the unit's text placed at /kernels/pack.cu, the path its #line names).
set -u
C=${C:-.gpu/P27} K=${K:-attnpack_9806844ba6e0a5b9}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda -ldl && mkdir -p /tmp/ph /tmp/o2
for r in 1 2; do /tmp/ah $C /tmp/ph > $OUT/pack-log$r.txt 2>&1; echo "round $r rc $?"; grep -E "^time" $OUT/pack-log$r.txt; done
grep -E "^same" $OUT/pack-log1.txt | awk '$5 != 0' | head; echo "differing outputs: $(grep -E '^same' $OUT/pack-log1.txt | awk '$5 != 0' | wc -l)"
[ "$K" = none ] && exit 0  # calls P2 (C=.gpu/P27b: t128, t128g2) and P3 (C=.gpu/P27c: passUnroll 4, 8) with K=none: variants timed, no profile
mkdir -p /kernels && cp $C/unit.cu /kernels/pack.cu
NCU=/usr/local/cuda/bin/ncu
timeout 240 $NCU --kernel-name $K --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight --section InstructionStats \
  --section MemoryWorkloadAnalysis_Tables --section LaunchStats --section Occupancy --import-source yes -o /tmp/rep /tmp/ah $C /tmp/o2 > $OUT/ncu-run.txt 2>&1; echo "ncu exit $?"; tail -2 $OUT/ncu-run.txt
$NCU --import /tmp/rep.ncu-rep --page source --print-source cuda,sass --csv 2> $OUT/source.err | xz -9 > $OUT/source.csv.xz
$NCU --import /tmp/rep.ncu-rep --page details > $OUT/details.txt 2>&1
wc -c $OUT/*
