#!/bin/sh
# Session 38 call X4: weights.bin read once on 12 threads (compiler/hash.ts partThreads now up to 12), checked where it is
# used: (1) the tiny Qwen-Image pipeline compiled at this tree for h100 at 64x64, 80x48 and 48x80 (its modules' real
# weights.bin files, one part each, read once; transformer_cfg over the transformer's weights, whose file is checked apart),
# generated on the GPU against diffusers (test/gpu/pipeline-fidelity.ts, session 36's F2 cases: latents cosine >= 0.995,
# PSNR >= 40 dB; F2 gave 0.9999993-0.9999997 and 56.7-57.0 dB); (2) call X2's full-size Qwen-Image transformer, loaded
# warm twice and cold once. Predicted: (1) as F2; (2) warm about 2.7 s (X2's 8 GiB file at 7.5-7.7 GB/s on 12 threads;
# 3.6-3.9 s on 8), cold the disk's (X2: 14.2-14.7 s).
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this tree, then pipeline-fidelity.mjs bundled by esbuild; bench.mjs,
# serve.mjs, weights-load.mjs and sharp.tar.xz left behind: the carry limit), .gpu/compiler, .gpu/X (as X1),
# .gpu/X4/qwen_image.tar.xz (`npx compile models/qwen_image/tiny.pipeline.json --size 64x64,80x48,48x80`, without
# graph.txt / report.md); tiny .onnx.data left behind.
# The commands as run were inline in this script; they are now bench/gpu/qwen_fullsize_load.sh's functions; the inline
# version differed only in what it printed and kept (X4 had no disk check, its loads printed no loadSeconds, make's line was cut at 120 characters).
set -u
W=/tmp/x4; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
tar -xJf .gpu/X4/qwen_image.tar.xz -C $W
timeout 120 /tmp/node .gpu/rt/pipeline-fidelity.mjs $W/qwen_image test/fixtures/pipeline_reference qwen_image qwen_image_cfg qwen_image_cfg_80x48 qwen_image_cfg_48x80 > $OUT/tiny-qwen.txt 2>&1; echo "tiny qwen_image rc $?"
grep -E "^\{|weights.bin|rror" $OUT/tiny-qwen.txt | cut -c1-300 | head -30
. bench/gpu/qwen_fullsize_load.sh
qwen_fullsize_artifact
load A1; load A2
evict $W/art/weights.bin; load B1
cp $W/load-A1.log $OUT/load-A1.log
