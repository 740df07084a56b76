#!/bin/sh
# Session 9 call D7: Qwen-Image end to end (pipeline of a17fa38: ping-pong attention with the partial last
# key tile; cuBLASLt GEMMs, the default) against diffusers' stages in the same call.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/art /tmp/dif && tar -xJf .gpu/D7/qwen.tar.xz -C /tmp/art && tar -xJf .gpu/D7/diffusers-slim.tar.xz -C /tmp/dif
mkdir -p /tmp/e2e
DIFFUSERS_SRC=/tmp/dif/src timeout 300 sh .gpu/D7/rt/run.sh bench --e2e --models qwen_image --artifact qwen_image=/tmp/art/qwen-image --iters 3 --baseline-script bench/gpu/baseline_e2e.py --out /tmp/e2e >> $L 2>&1
echo "e2e rc $? at $(date -u +%T)" | tee -a $L
cp /tmp/e2e/bench-e2e.json $OUT/e2e-qwen_image.json; cp /tmp/e2e/bench-e2e.md $OUT/e2e-qwen_image.md
grep -E "compiled end to end|diffusers|rc [1-9]|rror|identical|DIFFERENT" $L | cut -c1-300
