#!/bin/sh
# Session 35 call Y3: `npx bench --e2e --size 1216x832` (new flag), one request end to end (8 steps, seed 42, synthetic
# weights) of both families at 1216x832 (3952 image tokens), with diffusers' stages at that size in the same call
# (bench/gpu/baseline_e2e.py --size; diffusers' src on PYTHONPATH, .gpu/E32/diffusers-src.tar.xz). Pipelines compiled on
# the CPU machine at this tree:
#   npx compile models/flux2/full.pipeline.json --size 1216x832 --out .gpu/Y3/flux2-dev (and qwen_image -> .gpu/Y3/qwen-image)
#   tar -cf - -C .gpu/Y3 DIR | xz -T2 -c > .gpu/Y3/pipe-MODEL.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/E32/diffusers-src.tar.xz, .gpu/Y3/pipe-flux2.tar.xz, .gpu/Y3/pipe-qwen_image.tar.xz
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art /tmp/e2e /tmp/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C /tmp/dsrc
for m in flux2 qwen_image; do tar -xJf .gpu/Y3/pipe-$m.tar.xz -C /tmp/art; done
export DIFFUSERS_SRC=/tmp/dsrc/src
timeout 580 sh .gpu/rt/run.sh bench --e2e --size 1216x832 --artifact flux2=/tmp/art/flux2-dev --artifact qwen_image=/tmp/art/qwen-image \
  --iters 3 --baseline-script bench/gpu/baseline_e2e.py --out /tmp/e2e > $OUT/e2e.log 2>&1
echo "e2e rc $? at $(date -u +%T)"
cp /tmp/e2e/bench-e2e.md /tmp/e2e/bench-e2e.json $OUT/ 2>/dev/null
grep -E "end to end|text_encoder:|denoise:|vae/image|warm-up|loaded gpu" $OUT/e2e.log | cut -c1-250
cat /tmp/e2e/bench-e2e.md | head -60
