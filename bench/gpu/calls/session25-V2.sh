#!/bin/sh
# Session 25 call V2: the row kernels at the session's final tree (after the review's mends: dc_qmul, the prescale
# below 2^-126), `npx tsx test/gpu/cases.ts prepare DIR row-kernels` carried as .gpu/V25b/rows-c, through
# test/gpu/harness.cu; outputs back in 15 MB parts for `cases.ts check`.
set -u
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/cR /tmp/oR && cp .gpu/V25b/rows-c/cases.txt /tmp/cR/ && xz -dc .gpu/V25b/rows-c/kernels.cubin.xz > /tmp/cR/kernels.cubin
timeout 240 /tmp/h /tmp/cR /tmp/oR > $OUT/rows-log.txt 2>&1; echo "rows harness rc $?"
(cd /tmp/oR && split -b 15M outputs.bin $OUT/rows-out.)
