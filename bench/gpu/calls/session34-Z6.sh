#!/bin/sh
# Session 34 call Z6: Qwen-Image's whole pipeline with two sizes served over HTTP on the GPU. models/qwen_image/full.pipeline.json
# (structure only) compiled on the CPU machine for 1024x1024 and 1024x768 (.gpu/Z6/qwen-image.tar.xz: per size the transformer,
# its batch-2 module and three text lengths with theirs, and the VAE decoder), served with synthetic weights 42, --storage and
# --max-queued 1 (the smoke's url and 429 checks) by bench/gpu/serve_sizes.sh, the body it shares with Z4: a request at
# 1024x1024 (its PNG's size checked, timed), then test/gpu/serve_smoke.py at SIZE=1024x768 (true CFG with a negative prompt, PNG / WebP / JPEG, same bytes, n = 2, url, a queue
# of 1, bad requests, SIGTERM). Prepared here (about 4 minutes on 2 cores with the kernel cache warm):
#   npx compile models/qwen_image/full.pipeline.json --size 1024x1024,1024x768 --out .gpu/Z6/qwen-image
#   tar -cf - -C .gpu/Z6 qwen-image | xz -T2 -c > .gpu/Z6/qwen-image.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/compiler, .gpu/Z6/qwen-image.tar.xz (the tiny .onnx.data files out of
# the tree for the call: 64 MiB in all).
set -u
W=/tmp/z6; mkdir -p $W
tar -xJf .gpu/Z6/qwen-image.tar.xz -C $W && ls $W
sh bench/gpu/serve_sizes.sh $W/qwen-image qwen_image 1024x1024 1024x768
