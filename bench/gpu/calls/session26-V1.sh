#!/bin/sh
# Session 26 call V1: the row kernels after the FP8 scale's one spelling (dc_fp8_scale), `npx tsx test/gpu/cases.ts
# prepare DIR row-kernels` carried as .gpu/V26/rows (its expected.json kept here), through test/gpu/harness.cu; outputs
# back in 15 MB parts for `cases.ts check`.
set -u
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/cR /tmp/oR && cp .gpu/V26/rows/cases.txt /tmp/cR/ && xz -dc .gpu/V26/rows/kernels.cubin.xz > /tmp/cR/kernels.cubin
timeout 240 /tmp/h /tmp/cR /tmp/oR > $OUT/rows-log.txt 2>&1; echo "rows harness rc $?"
(cd /tmp/oR && split -b 15M outputs.bin $OUT/rows-out.)
