#!/bin/sh
# Session 19 calls V2, V3: the V8 pack with every row copied in at once (cp.async) into a swizzled tile (V2: clusters of 8, one CTA a SM; V3: clusters of 16, two CTAs a SM, channel pairs read 4 bytes at a time), issue 7.
#  1. the attention harness on the new tree's FP8 P·V cases (.gpu/v8, prepared as in V1), twice;
#  2. the models, old (55ef030) and new artifacts: session19-V4.sh's A/B and profiles (session 15's G1 script, then
#     each variant once with --profile into $OUT/profile-MODEL-VARIANT.json).
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
mkdir -p $OUT/new
for r in 1 2; do timeout 120 /tmp/ah .gpu/v8 $OUT/new > $OUT/new/log.txt 2>&1; echo "harness new $r exit $?"; grep -E "^time" $OUT/new/log.txt; done
ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session19-V4.sh
