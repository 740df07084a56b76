#!/bin/sh
# Session 17 call A2: row maxima as running chains against the tree (issues 6, 7). Cases:
# The variants (rowMax 'chain', turns false, pvHold) are in bench/gpu/calls/session17-variants.patch: `git apply` it before preparing (not kept: none was faster).
# `ATTN_CASES='^(flux2_single_fp8|flux2_single|flux2_single_fp8pv|flux2_single_fp8_chain|flux2_single_chain|flux2_single_fp8pv_chain|flux2_single_fp8_bn128|flux2_single_fp8_mma)$'
#  npx tsx test/gpu/attention.ts prepare .gpu/s17/cases2`. The harness twice (times, outputs for `attention.ts check`),
# then the SASS of every kernel (where ptxas put the wait for the P·V in flight).
set -u
C=${C:-.gpu/s17/cases2}
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
for r in $(seq ${ROUNDS:-2}); do timeout 200 /tmp/ah $C $OUT > $OUT/harness$r.txt 2>&1; echo "harness $r exit $?"; grep -E "^time.* attention " $OUT/harness$r.txt; done
cuobjdump -sass $C/kernels.cubin > $OUT/sass.txt 2>&1; ls -la $OUT
