#!/bin/sh
# Session 18 call B9: Flux.2 [dev] end to end with the new default (FP8 P·V, two P arrays), `npx bench --e2e --no-baseline`
# (no room for diffusers beside the runtime under the carry limit): the pipeline compiled at this session's tree,
# `npx compile models/flux2/full.pipeline.json --target h100 --out /tmp/fp/flux2-dev`, `tar -cJf .gpu/B9/pipe.tar.xz -C /tmp/fp flux2-dev`.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/art /tmp/e2e && tar -xJf .gpu/B9/pipe.tar.xz -C /tmp/art
timeout 450 sh .gpu/rt/run.sh bench --e2e --models flux2 --artifact flux2=/tmp/art/flux2-dev --iters 3 --no-baseline --out /tmp/e2e >> $L 2>&1
echo "e2e rc $? at $(date -u +%T)" | tee -a $L
cp /tmp/e2e/bench-e2e.json /tmp/e2e/bench-e2e.md $OUT/ 2>/dev/null
grep -E "compiled end to end|rc [1-9]|rror|identical|DIFFERENT|transformer" $L | cut -c1-300
