#!/bin/sh
# Session 35 call Y9: Qwen-Image's whole pipeline with a landscape size and its portrait, 1216x832 and 832x1216 (as many
# image tokens, 3952: the sizes' modules take the same input shapes and are picked by size, Executor.forSize), served by
# bench/gpu/serve_sizes.sh with synthetic weights 42: two requests at 832x1216, one at 1216x832, 832x1216 again (the same PNG
# bytes), the device memory in use, then serve_smoke at 1216x832. Compiled on the CPU machine:
#   npx compile models/qwen_image/full.pipeline.json --size 1216x832,832x1216 --out .gpu/Y9/qwen-image
#   tar -cf - -C .gpu/Y9 qwen-image | xz -T2 -c > .gpu/Y9/qwen-image.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/Y9/qwen-image.tar.xz
set -u
W=/tmp/y9; mkdir -p $W
tar -xJf .gpu/Y9/qwen-image.tar.xz -C $W && ls $W
sh bench/gpu/serve_sizes.sh $W/qwen-image qwen_image 832x1216 1216x832
