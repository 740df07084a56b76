#!/bin/sh
# Session 36 call F3: `npx bench --e2e --no-baseline` at 1024x1024, both families, at the session's final runtime (the noise
# pool's fix, latent packing in cache-friendly order, GeneratedImage.latents): the PNG bytes must be session 35's call Y10's
# (sha256 0591d4dd5d29... Flux.2, 682de03fcbf0... Qwen-Image: same synthetic weights 42, seed 42, prompt), the stage times
# as Y10's within the card's spread. Pipelines compiled on the CPU machine at 6574be2:
#   npx compile models/flux2/full.pipeline.json --out .gpu/F3/flux2-dev (and qwen_image -> .gpu/F3/qwen-image)
#   tar -cf - -C .gpu/F3 DIR | xz -T2 -c > .gpu/F3/pipe-MODEL.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts, sharp.tar.xz left behind), .gpu/F3; the tiny models' .onnx.data stayed behind.
# The body is bench/gpu/e2e_pipelines.sh (calls F3 and F4 repeated it, with GEMM tuning on here); as run, its timeout was 400 s.
set -u
DC_GEMM_TUNING=/tmp/gemm-tuning.json NO_BASELINE=1 TIMEOUT_S=400 sh bench/gpu/e2e_pipelines.sh .gpu/F3
