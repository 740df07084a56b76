#!/bin/sh
# Session 19 calls V2, V3: the V8 pack with every row copied in at once (cp.async) into a swizzled tile (V2: clusters of 8, one CTA a SM; V3: clusters of 16, two CTAs a SM, channel pairs read 4 bytes at a time), issue 7.
#  1. the attention harness on the new tree's FP8 P·V cases (.gpu/v8, prepared as in V1), twice;
#  2. the models, old (55ef030) and new artifacts: session 15's G1 script (outputs of new against old, steps
#     alternating), then each variant once with --profile (every launch timed alone) into $OUT/profile-MODEL-VARIANT.json.
set -u
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -o /tmp/ah test/gpu/attention_harness.cu -lcuda 2>/dev/null || exit 1
mkdir -p $OUT/new
for r in 1 2; do timeout 120 /tmp/ah .gpu/v8 $OUT/new > $OUT/new/log.txt 2>&1; echo "harness new $r exit $?"; grep -E "^time" $OUT/new/log.txt; done
D=.gpu/V1 MODELS="flux qwen" VARIANTS="old new" ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session15-G1.sh
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
for m in flux qwen; do for v in old new; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/$m-$v --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>/dev/null; echo "profile $m-$v rc $?"
  tail -1 /tmp/p.json > $OUT/profile-$m-$v.json
done; done
