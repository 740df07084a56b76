#!/bin/sh
# Session 10 call E11: the element-wise and row kernels (`npx tsx test/gpu/cases.ts prepare DIR rows` at the commit
# that adds the harness's same-size copy), each timed against the 1 GiB copy and against a copy of its own size.
# Carried: DIR's cases.txt and kernels.cubin (.gpu/E11/run); checked here with `cases.ts check DIR OUT`.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/o11 && timeout 300 /tmp/h .gpu/E11/run /tmp/o11 > $OUT/log.txt 2>&1; echo "harness exit $?"
cd /tmp/o11 && split -b 15M outputs.bin $OUT/outputs.part. && ls -la $OUT | head; tail -2 $OUT/log.txt
