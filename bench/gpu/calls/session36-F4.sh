#!/bin/sh
# Session 36 calls F4 and F5, each on a fresh machine: call F3 (`npx bench --e2e --no-baseline` at 1024x1024, both families,
# F3's pipeline artifacts) with the cuBLASLt algorithms no longer timed at load ($DC_GEMM_TUNING unset: each shape runs the
# heuristic's first algorithm; runtime/gpu/tuning-cache.ts). Predicted: the two calls give the same PNG bytes for each family
# (timing chose Qwen-Image's differently on Y10's card and F3's), and requests within 0.4 ms of F3's (what the timings saved).
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit, sharp.tar.xz left behind), .gpu/F3; tiny .onnx.data left behind.
set -u
unset DC_GEMM_TUNING
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art /tmp/e2e
for m in flux2 qwen_image; do tar -xJf .gpu/F3/pipe-$m.tar.xz -C /tmp/art; done
timeout 400 sh .gpu/rt/run.sh bench --e2e --no-baseline --artifact flux2=/tmp/art/flux2-dev --artifact qwen_image=/tmp/art/qwen-image \
  --iters 3 --out /tmp/e2e > $OUT/e2e.log 2>&1
echo "e2e rc $? at $(date -u +%T)"
cp /tmp/e2e/bench-e2e.md /tmp/e2e/bench-e2e.json $OUT/ 2>/dev/null
grep -E "GEMM (algorithms|tuning)" $OUT/e2e.log | sort | uniq -c | cut -c1-200
grep -E "sha256|^\| \*\*total|^End to end|^\| (text encode|denoise|VAE decode|image encode)" /tmp/e2e/bench-e2e.md | cut -c1-250
