#!/bin/sh
# Session 12 call G3: every element-wise and row kernel of the tiny fixtures (checked) and of flux2_dev at 1024x1024
# (timed against the 1 GiB copy and a same-size copy), at the commit that launches Flux.2's twin row kernels as
# segmented kernels: `npx tsx test/gpu/cases.ts prepare .gpu/rows rows` (carried: cases.txt, kernels.cubin as .xz),
# checked here with `cases.ts check .gpu/rows OUT`.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/cases /tmp/oc && cp .gpu/G3/cases/cases.txt /tmp/cases/ && xz -dc .gpu/G3/cases/kernels.cubin.xz > /tmp/cases/kernels.cubin
timeout 400 /tmp/h /tmp/cases /tmp/oc > $OUT/log.txt 2>&1; echo "harness exit $?"
cd /tmp/oc && split -b 15M outputs.bin $OUT/outputs.part. && ls -la $OUT | head; tail -2 $OUT/log.txt
