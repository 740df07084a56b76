#!/bin/sh
# Session 36 call F2: the tiny pipelines compiled for h100 (fp8) at 64x64, 80x48 and 48x80, served by the GPU executor
# end to end (text encoder, device denoising loop, VAE decoder, RGB8 on the device) from the reference prompt and noise,
# against diffusers (test/gpu/pipeline-fidelity.ts: final latents cosine >= 0.995, image PSNR >= 40 dB against diffusers'
# own 8-bit image). Predicted: cosine about 0.9999 (the modules alone are 0.999998 against PyTorch, call Y7), PSNR 45-60 dB.
# .gpu/F2/{flux2,qwen_image}.tar.xz: `npx compile models/F/tiny.pipeline.json --size 64x64,80x48,48x80 --out .gpu/F2/F`
# at 2db7b86 (tarred without graph.txt / report.md); .gpu/F2/rt: node.xz, node.version, koffi, and
# test/gpu/pipeline-fidelity.ts bundled by esbuild. The tiny models' .onnx.data and bench/results stayed behind (carry limit).
# First run (no timeouts, exitCode only): Flux.2's three cases passed, then the process stayed alive on the noise pool's
# worker threads or in release() until the call's 400 s limit; the script now says when release() returns, then exits, and each run has a timeout.
set -u
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
W=/tmp/f2; mkdir -p $W
xz -dc .gpu/F2/rt/node.xz > /tmp/node && chmod +x /tmp/node
for f in flux2 qwen_image; do tar -xJf .gpu/F2/$f.tar.xz -C $W; done
R=test/fixtures/pipeline_reference
timeout 60 /tmp/node .gpu/F2/rt/pipeline-fidelity.mjs $W/flux2 $R flux2 flux2_80x48 flux2_48x80 > $OUT/flux2.txt 2>&1; echo "flux2 rc $?"; cat $OUT/flux2.txt
timeout 60 /tmp/node .gpu/F2/rt/pipeline-fidelity.mjs $W/qwen_image $R qwen_image qwen_image_cfg qwen_image_cfg_80x48 qwen_image_cfg_48x80 > $OUT/qwen_image.txt 2>&1; echo "qwen_image rc $?"; cat $OUT/qwen_image.txt
