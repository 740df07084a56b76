#!/bin/sh
# Session 24 calls P1, P2 (C=.gpu/P4: the same plus ROWS_UNIFORM, a block in one segment read with pointers set once an item), P3 (C=.gpu/P5: the harness now builds the packs the models run, attention "auto"): the attention pack's instruction diet (bit-identical): V's parked rows kept as staged (no row
# pass where nothing changes V), Q/K rounded to bf16 once with their amax on the bf16 pairs, the codes by dc_qdiv1
# where the block's k is 1. Pack harness (test/gpu/attention-pack.ts prepare .gpu/P3 /work/wt-old at 41a6bd0,
# PACK_SKIP=registers,unstaged,persist,parkPersist): base = 41a6bd0's pack, new = this tree's, b4 = bounds of 4.
# Every output must equal the base's bytes. Then Nsight Compute's per-instruction counts of the new Flux.2 single pack.
set -u
C=${C:-.gpu/P3}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
L=$OUT/pack-log.txt
xz -dk $C/kernels.cubin.xz
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda && mkdir -p /tmp/ph /tmp/o2 && /tmp/ah $C /tmp/ph > $L 2>&1; echo "pack harness rc $?"
grep -E "^time|^device" $L
grep -E "^same" $L | awk '$5 != 0' | head -20; echo "differing outputs: $(grep -E '^same' $L | awk '$5 != 0' | wc -l) of $(grep -cE '^same' $L)"
/tmp/ah $C /tmp/ph > $OUT/pack-log2.txt 2>&1; grep -E "^time" $OUT/pack-log2.txt
[ -n "${K:-}" ] || exit 0
NCU=/usr/local/cuda/bin/ncu
for k in $K; do
  timeout 200 $NCU --kernel-name $k --launch-count 1 --section SourceCounters --section WarpStateStats --section SpeedOfLight --section InstructionStats \
    -o /tmp/rep-$k /tmp/ah $C /tmp/o2 > $OUT/ncu-run-$k.txt 2>&1; echo "ncu $k exit $?"
  $NCU --import /tmp/rep-$k.ncu-rep --page source --print-source sass --csv > $OUT/source-$k.csv 2> /dev/null
  $NCU --import /tmp/rep-$k.ncu-rep --page details > $OUT/details-$k.txt 2>&1
done
wc -c $OUT/*
