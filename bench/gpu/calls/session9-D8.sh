#!/bin/sh
# Session 9 call D8: Flux.2 [dev] end to end (pipeline of 8758d57; attention and GEMMs as in session 8:
# the changes of this session do not reach Flux.2 by default) against diffusers' stages in the same call.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/art /tmp/dif && tar -xJf .gpu/D8/flux.tar.xz -C /tmp/art && tar -xJf .gpu/D8/diffusers-slim.tar.xz -C /tmp/dif
mkdir -p /tmp/e2e
DIFFUSERS_SRC=/tmp/dif/src timeout 300 sh .gpu/D8/rt/run.sh bench --e2e --models flux2 --artifact flux2=/tmp/art/flux2-dev --iters 3 --baseline-script bench/gpu/baseline_e2e.py --out /tmp/e2e >> $L 2>&1
echo "e2e rc $? at $(date -u +%T)" | tee -a $L
cp /tmp/e2e/bench-e2e.json $OUT/e2e-flux2.json; cp /tmp/e2e/bench-e2e.md $OUT/e2e-flux2.md
grep -E "compiled end to end|diffusers|rc [1-9]|rror|identical|DIFFERENT" $L | cut -c1-300
