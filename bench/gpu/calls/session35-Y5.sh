#!/bin/sh
# Session 35 call Y5: test/gpu/shared-arena.ts again (bundled: .gpu/rt/shared-arena.mjs, esbuild as runtime/gpu/pack.ts does)
# after the cuBLASLt workspaces joined the arenas in the share: each network's modules alone against all in one activation
# memory, twice over, the same bytes; Qwen-Image (call Y1's artifact: 16 transformer modules, 2 VAE decoders) and Flux.2
# [dev] (call Y4's: a transformer and a VAE decoder at each of 1024x1024 and 1024x768), synthetic weights 42.
# carry: .gpu/rt, .gpu/Y1/qwen-image-full.tar.xz, .gpu/Y4/pipe-flux2.tar.xz
set -u
W=/tmp/y5; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
tar -xJf .gpu/Y1/qwen-image-full.tar.xz -C $W && tar -xJf .gpu/Y4/pipe-flux2.tar.xz -C $W
NODE=/tmp/dc-node-$(cat .gpu/rt/node.version)
[ -x $NODE ] || { xz -dc .gpu/rt/node.xz > $NODE && chmod +x $NODE; }
for a in qwen-image flux2-dev; do
  timeout 280 $NODE .gpu/rt/shared-arena.mjs $W/$a --synthetic-weights 42 > $OUT/$a.jsonl 2> $OUT/$a.err; echo "$a shared-arena rc $?"
  cat $OUT/$a.jsonl; tail -2 $OUT/$a.err | cut -c1-300
done
