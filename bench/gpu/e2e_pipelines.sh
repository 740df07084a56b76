#!/bin/sh
# Runs `npx bench --e2e` on the GPU host over pipeline artifacts compiled on the CPU machine, both families, with diffusers'
# stages in the same call (bench/gpu/baseline_e2e.py; diffusers' src from .gpu/E32/diffusers-src.tar.xz on PYTHONPATH).
# Usage (in a device call, from the repository root): sh bench/gpu/e2e_pipelines.sh DIR [BENCH_FLAG...]
# DIR holds pipe-flux2.tar.xz and pipe-qwen_image.tar.xz (tar -cf - -C DIR flux2-dev | xz ..., and qwen-image); BENCH_FLAGs go to
# npx bench (--size WxH). Writes gpu.txt, e2e.log, bench-e2e.{md,json} to $OUT and prints the figures.
set -u
D=$1; shift
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art /tmp/e2e /tmp/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C /tmp/dsrc
for m in flux2 qwen_image; do tar -xJf $D/pipe-$m.tar.xz -C /tmp/art; done
export DIFFUSERS_SRC=/tmp/dsrc/src
timeout 540 sh .gpu/rt/run.sh bench --e2e "$@" --artifact flux2=/tmp/art/flux2-dev --artifact qwen_image=/tmp/art/qwen-image \
  --iters 3 --baseline-script bench/gpu/baseline_e2e.py --out /tmp/e2e > $OUT/e2e.log 2>&1
echo "e2e rc $? at $(date -u +%T)"
cp /tmp/e2e/bench-e2e.md /tmp/e2e/bench-e2e.json $OUT/ 2>/dev/null
grep -E "end to end|GPU memory|text_encoder:|denoise:|vae/image|warm-up|loaded gpu" $OUT/e2e.log | cut -c1-250
grep -E "^\| \*\*total|^\| GPU memory|^End to end" /tmp/e2e/bench-e2e.md
