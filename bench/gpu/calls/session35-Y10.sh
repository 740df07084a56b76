#!/bin/sh
# Session 35 call Y10: `npx bench --e2e` at the default size, 1024x1024, both families, with diffusers' stages in the same call
# (bench/gpu/baseline_e2e.py; diffusers' src on PYTHONPATH, .gpu/E32/diffusers-src.tar.xz), at the session's final tree: the
# whole request after this session's changes (a network's modules in one activation memory, one step-memo budget, modules
# picked by size). Session 32's calls E1 / E2 are the same measurement before them. Pipelines compiled on the CPU machine:
#   npx compile models/flux2/full.pipeline.json --out .gpu/Y10/flux2-dev (and qwen_image -> .gpu/Y10/qwen-image)
#   tar -cf - -C .gpu/Y10 DIR | xz -T2 -c > .gpu/Y10/pipe-MODEL.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/E32/diffusers-src.tar.xz, .gpu/Y10/pipe-flux2.tar.xz, .gpu/Y10/pipe-qwen_image.tar.xz
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art /tmp/e2e /tmp/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C /tmp/dsrc
for m in flux2 qwen_image; do tar -xJf .gpu/Y10/pipe-$m.tar.xz -C /tmp/art; done
export DIFFUSERS_SRC=/tmp/dsrc/src
timeout 480 sh .gpu/rt/run.sh bench --e2e --artifact flux2=/tmp/art/flux2-dev --artifact qwen_image=/tmp/art/qwen-image \
  --iters 3 --baseline-script bench/gpu/baseline_e2e.py --out /tmp/e2e > $OUT/e2e.log 2>&1
echo "e2e rc $? at $(date -u +%T)"
cp /tmp/e2e/bench-e2e.md /tmp/e2e/bench-e2e.json $OUT/ 2>/dev/null
grep -E "end to end|GPU memory|text_encoder:|denoise:|vae/image" $OUT/e2e.log | cut -c1-250
grep -E "^\| \*\*total|^\| GPU memory|^End to end" /tmp/e2e/bench-e2e.md
