#!/bin/sh
# Session 17 call A6: FP8 Q·Kᵀ in 128-key tiles with MMA row sums (exponentials under the warpgroup's own P·V) and a
# share of the exponentials by polynomial, against the default 192-key kernel (issues 6, 7). Cases:
# `ATTN_CASES='^(flux2_single_fp8|flux2_single_fp8_mma|flux2_single_fp8_bn128mma_poly[234])$' npx tsx test/gpu/attention.ts
#  prepare .gpu/s17/cases6`. The harness three times (times, outputs for `attention.ts check`), then the SASS.
set -u
C=${C:-.gpu/s17/cases6}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
for r in 1 2 3; do timeout 200 /tmp/ah $C $OUT > $OUT/harness$r.txt 2>&1; echo "harness $r exit $?"; grep -E "^time \S+ attention " $OUT/harness$r.txt; done
cuobjdump -sass $C/kernels.cubin > $OUT/sass.txt 2>&1; ls -la $OUT
