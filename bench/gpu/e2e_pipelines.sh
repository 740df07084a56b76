#!/bin/sh
# Runs `npx bench --e2e` on the GPU host over pipeline artifacts compiled on the CPU machine, both families, with diffusers'
# stages in the same call (bench/gpu/baseline_e2e.py; diffusers' src from .gpu/E32/diffusers-src.tar.xz on PYTHONPATH), or
# without them where NO_BASELINE=1.
# Usage (in a device call, from the repository root): sh bench/gpu/e2e_pipelines.sh DIR [BENCH_FLAG...]
# DIR holds pipe-flux2.tar.xz and pipe-qwen_image.tar.xz (tar -cf - -C DIR flux2-dev | xz ..., and qwen-image); BENCH_FLAGs go to
# npx bench (--size WxH). DC_GEMM_TUNING is the caller's, else /tmp/gemm-tuning.json (load-time GEMM tuning, as sessions 32-35
# ran); DC_GEMM_TUNING=off for the heuristic's algorithms. Writes gpu.txt, e2e.log, bench-e2e.{md,json} to $OUT and prints the
# figures and the PNG hashes.
set -u
D=$1; shift
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=${DC_GEMM_TUNING:-/tmp/gemm-tuning.json}
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art /tmp/e2e
for m in flux2 qwen_image; do tar -xJf $D/pipe-$m.tar.xz -C /tmp/art; done
if [ "${NO_BASELINE:-0}" = 1 ]; then
  set -- "$@" --no-baseline
else
  mkdir -p /tmp/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C /tmp/dsrc
  export DIFFUSERS_SRC=/tmp/dsrc/src
  set -- "$@" --baseline-script bench/gpu/baseline_e2e.py
fi
timeout ${TIMEOUT_S:-540} sh .gpu/rt/run.sh bench --e2e "$@" --artifact flux2=/tmp/art/flux2-dev --artifact qwen_image=/tmp/art/qwen-image \
  --iters 3 --out /tmp/e2e > $OUT/e2e.log 2>&1
echo "e2e rc $? at $(date -u +%T)"
cp /tmp/e2e/bench-e2e.md /tmp/e2e/bench-e2e.json $OUT/ 2>/dev/null
grep -E "end to end|GPU memory|text_encoder:|denoise:|vae/image|warm-up|loaded gpu" $OUT/e2e.log | cut -c1-250
grep -E "GEMM (algorithms|tuning)" $OUT/e2e.log | sort | uniq -c | cut -c1-200
grep -E "sha256|^\| \*\*total|^\| GPU memory|^End to end" /tmp/e2e/bench-e2e.md | cut -c1-250
