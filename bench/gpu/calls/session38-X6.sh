#!/bin/sh
# Session 38 call X6, at bf32483 (run again as X7 at f00c972, after the hand-off refactor e187bc0) (the runtime as packed there; the hand-off's slots sized to a small file, and a stopped
# reading thread's reason as the load's error, both after X5): (1) X4's tiny Qwen-Image pipeline against diffusers (its small
# weights.bin files read once into slots of their own size); (2) bench/gpu/weights-load.ts, an 8 GiB file, one round,
# handed on 12 threads. Predicted: (1) X4's figures exactly; (2) X2's 1.12-1.14 s.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at bf32483, then pipeline-fidelity.mjs and weights-load.mjs bundled by esbuild;
# bench.mjs, serve.mjs, sharp.tar.xz left behind), .gpu/X4/qwen_image.tar.xz; tiny .onnx.data left behind.
set -u
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
mkdir -p /tmp/x6 && tar -xJf .gpu/X4/qwen_image.tar.xz -C /tmp/x6
timeout 120 /tmp/node .gpu/rt/pipeline-fidelity.mjs /tmp/x6/qwen_image test/fixtures/pipeline_reference qwen_image qwen_image_cfg qwen_image_cfg_80x48 qwen_image_cfg_48x80 > $OUT/tiny-qwen.txt 2>&1; echo "tiny qwen_image rc $?"
grep -E "^\{" $OUT/tiny-qwen.txt | cut -c1-200; grep -E "^weights.bin" $OUT/tiny-qwen.txt | head -3
timeout 200 /tmp/node .gpu/rt/weights-load.mjs --gib 8 --rounds 1 --threads 12 2>&1 | tee $OUT/weights-load.txt
