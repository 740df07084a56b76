#!/bin/sh
# Session 23 call H3 (the final review's mends): the pack harness (test/gpu/attention-pack.ts prepare .gpu/H3 /work/wt-old at
# 2a6d17f): base = 2a6d17f's pack, new = this tree's (DCP_SLOT's swizzle, (r >> 2) ^ (r >> 3), without the bf16 Vt path's 2-way bank conflicts,
# the parked values stored by dc_store8, the persistent loop's barrier ahead of the next item's copies), parkPersist =
# persistent and parked (refused at 2a6d17f). Every output must equal the base's bytes.
set -u
L=$OUT/pack-log.txt
xz -dk .gpu/H3/kernels.cubin.xz
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda && mkdir -p /tmp/ph && /tmp/ah .gpu/H3 /tmp/ph > $L 2>&1; echo "pack harness rc $?"
grep -E "^time|^device" $L
grep -E "^same" $L | awk '$5 != 0' | head -20; echo "differing outputs: $(grep -E '^same' $L | awk '$5 != 0' | wc -l) of $(grep -cE '^same' $L)"
