#!/bin/sh
# Session 35 call Y1: Qwen-Image's whole pipeline at two sizes on the GPU (session 34's failed call Z6 again, after its fix), now
# with each network's modules in one activation memory. .gpu/Y1/qwen-image-full.tar.xz: models/qwen_image/full.pipeline.json
# (structure only) compiled on the CPU machine for 1024x1024 and 1024x768 (per size the transformer, its batch-2 module and
# three text lengths with theirs, and the VAE decoder):
#   npx compile models/qwen_image/full.pipeline.json --size 1024x1024,1024x768 --out .gpu/Z6/qwen-image
#   tar -cf - -C .gpu/Z6 qwen-image | xz -T2 -c > .gpu/Y1/qwen-image-full.tar.xz
# (1) test/gpu/shared-arena.ts (bundled: .gpu/rt/shared-arena.mjs, esbuild as runtime/gpu/pack.ts does): the transformer's 16
# modules and the VAE decoder's 2, synthetic weights 42, each alone and then all in one arena, twice over: the same bytes,
# and the device memory of each configuration. (2) bench/gpu/serve_sizes.sh: served, requests at both sizes, the smoke.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/Y1/qwen-image-full.tar.xz (the tiny .onnx.data files out of the tree).
set -u
W=/tmp/y1; mkdir -p $W
tar -xJf .gpu/Y1/qwen-image-full.tar.xz -C $W && ls $W
NODE=/tmp/dc-node-$(cat .gpu/rt/node.version)
[ -x $NODE ] || { xz -dc .gpu/rt/node.xz > $NODE && chmod +x $NODE; }
timeout 300 $NODE .gpu/rt/shared-arena.mjs $W/qwen-image --synthetic-weights 42 > $OUT/shared-arena.jsonl 2> $OUT/shared-arena.err; echo "shared-arena rc $?"
cat $OUT/shared-arena.jsonl; tail -3 $OUT/shared-arena.err | cut -c1-400
sh bench/gpu/serve_sizes.sh $W/qwen-image qwen_image 1024x1024 1024x768
