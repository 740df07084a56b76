#!/bin/sh
# Session 32 calls B1 / B2 (issue 7's bench): `npx bench` with its PyTorch baselines in the same run, on the card lent
# (an H200 this session): the compiled artifact (CUDA graph, 20 iterations), then diffusers' own transformer with the same
# synthetic weights, eager and torch.compile (bench/gpu/baseline_diffusers.py, diffusers 58eb52c's src on PYTHONPATH).
# Artifacts compiled at this tree in $D/art.tar.xz (/tmp/art32/flux-new: Flux.2 [dev] 1024x1024, 512 text tokens;
# /tmp/art32/qwen-new: Qwen-Image batch 2 (CFG), 32 text tokens); diffusers' src in $D/diffusers-src.tar.xz.
# MODELS: flux2_dev or qwen_image (one a call: the baselines' torch.compile takes 1.5-3 minutes each).
set -u
D=${D:-.gpu/B32} MODELS=${MODELS:-flux2_dev}
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
tar -xJf $D/art.tar.xz -C /tmp
mkdir -p /tmp/dsrc && tar -xJf $D/diffusers-src.tar.xz -C /tmp/dsrc
export DIFFUSERS_SRC=/tmp/dsrc/src DC_GEMM_TUNING=/tmp/gemm-tuning.json
rm -rf /tmp/bench && mkdir -p /tmp/bench
timeout 560 sh .gpu/rt/run.sh bench --models $MODELS --artifact flux2_dev=/tmp/art32/flux-new --artifact qwen_image=/tmp/art32/qwen-new \
  --iters 20 --compile --baseline-script bench/gpu/baseline_diffusers.py --out /tmp/bench > $OUT/bench-$MODELS.log 2>&1
echo "bench rc $? $(date -u +%T)"
for f in /tmp/bench/*.md /tmp/bench/*.json; do cp "$f" "$OUT/$MODELS-$(basename "$f")"; done
grep -E "^\| $MODELS " /tmp/bench/*.md
tail -5 $OUT/bench-$MODELS.log
