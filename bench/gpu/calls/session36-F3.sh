#!/bin/sh
# Session 36 call F3: `npx bench --e2e --no-baseline` at 1024x1024, both families, at the session's final runtime (the noise
# pool's fix, latent packing in cache-friendly order, GeneratedImage.latents): the PNG bytes must be session 35's call Y10's
# (sha256 0591d4dd5d29... Flux.2, 682de03fcbf0... Qwen-Image: same synthetic weights 42, seed 42, prompt), the stage times
# as Y10's within the card's spread. Pipelines compiled on the CPU machine at 6574be2:
#   npx compile models/flux2/full.pipeline.json --out .gpu/F3/flux2-dev (and qwen_image -> .gpu/F3/qwen-image)
#   tar -cf - -C .gpu/F3 DIR | xz -T2 -c > .gpu/F3/pipe-MODEL.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts, sharp.tar.xz left behind), .gpu/F3; the tiny models' .onnx.data stayed behind.
set -u
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art /tmp/e2e
for m in flux2 qwen_image; do tar -xJf .gpu/F3/pipe-$m.tar.xz -C /tmp/art; done
timeout 400 sh .gpu/rt/run.sh bench --e2e --no-baseline --artifact flux2=/tmp/art/flux2-dev --artifact qwen_image=/tmp/art/qwen-image \
  --iters 3 --out /tmp/e2e > $OUT/e2e.log 2>&1
echo "e2e rc $? at $(date -u +%T)"
cp /tmp/e2e/bench-e2e.md /tmp/e2e/bench-e2e.json $OUT/ 2>/dev/null
grep -E "sha256|^\| \*\*total|^\| GPU memory|^End to end|^\| (text encode|denoise|VAE decode|image encode)" /tmp/e2e/bench-e2e.md | cut -c1-250
