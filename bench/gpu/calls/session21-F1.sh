#!/bin/sh
# Session 21 call F1: the session's final tree (fuse-vquant, the pack's prefetched RoPE rows, row inputs held once a
# run) against its start (23c969c), both models: session 15's G1 (outputs of new against old, steps alternating, two
# rounds), then `npx bench --no-baseline` on the new artifacts (its step, and the step memo's row). D names another
# artifacts folder (session 22's F1).
set -u
D=${D:-.gpu/F1s21}
D=$D MODELS="flux qwen" VARIANTS="old new" ROUNDS=${ROUNDS:-2} sh bench/gpu/calls/session15-G1.sh
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
rm -rf /tmp/bench && mkdir -p /tmp/bench
timeout 240 sh .gpu/rt/run.sh bench --models qwen_image,flux2_dev --artifact qwen_image=/tmp/art/qwen-new --artifact flux2_dev=/tmp/art/flux-new --no-baseline --iters 10 --out /tmp/bench > $OUT/bench.log 2>&1
echo "bench rc $?"
cp /tmp/bench/*.md $OUT/ 2>/dev/null; grep -E "^\|" /tmp/bench/*.md | head -24
