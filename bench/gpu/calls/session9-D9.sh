#!/bin/sh
# Session 9 call D9: the element-wise and row kernels (test/gpu/cases.ts prepare DIR rows) with each kernel's
# same-size device-to-device copy timed beside it (harness.cu `copysize`), the 1 GiB copy as before.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/o9 && timeout 200 /tmp/h .gpu/D9/cases /tmp/o9 > $OUT/log.txt 2>&1; echo "harness exit $?"
cd /tmp/o9 && split -b 15M outputs.bin $OUT/outputs.part. && ls -la $OUT; tail -2 $OUT/log.txt
