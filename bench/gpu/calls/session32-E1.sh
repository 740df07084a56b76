#!/bin/sh
# Session 32 calls E1 / E2: one 1024x1024 request end to end (8 steps, seed 42, synthetic weights), `npx bench --e2e` with
# diffusers' stages in the same call (bench/gpu/baseline_e2e.py; diffusers 58eb52c's src on PYTHONPATH), on the card lent
# (an H200 this session). Pipelines compiled at this tree: `npx compile models/flux2/full.pipeline.json --target h100 --out
# /tmp/fp32/flux2-dev` and the same for models/qwen_image (every text-length module), then
# `tar -cJf .gpu/E32/pipe-MODEL.tar.xz -C /tmp/fp32 DIR`. MODEL: flux2 (DIR flux2-dev) or qwen_image (DIR qwen-image).
# Call E3: MODEL=flux2 again with the runtime whose device loop waits by event queries that yield (f76bd9f), NO_BASELINE=1.
set -u
D=${D:-.gpu/E32} MODEL=${MODEL:-flux2}
case $MODEL in flux2) DIR=flux2-dev ;; *) DIR=qwen-image ;; esac
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art /tmp/e2e /tmp/dsrc && tar -xJf $D/pipe-$MODEL.tar.xz -C /tmp/art && tar -xJf $D/diffusers-src.tar.xz -C /tmp/dsrc
export DIFFUSERS_SRC=/tmp/dsrc/src
BASE="--baseline-script bench/gpu/baseline_e2e.py"; [ "${NO_BASELINE:-0}" = 1 ] && BASE=--no-baseline
timeout 560 sh .gpu/rt/run.sh bench --e2e --models $MODEL --artifact $MODEL=/tmp/art/$DIR --iters 3 $BASE --out /tmp/e2e > $OUT/e2e-$MODEL.log 2>&1
echo "e2e rc $? at $(date -u +%T)"
for f in /tmp/e2e/*.md /tmp/e2e/*.json; do cp "$f" "$OUT/$MODEL-$(basename "$f")"; done
cat /tmp/e2e/*.md | head -40
