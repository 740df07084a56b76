#!/bin/sh
# Session 35 call Y4: both whole pipelines at two sizes served over HTTP with the step memo in one budget for the models
# sharing an activation memory (runtime/gpu/memo.ts: entries sized per model, least recently used out by bytes), each by
# bench/gpu/serve_sizes.sh (two requests at 1024x1024, one at 1024x768, 1024x1024 again: the same PNG bytes; device memory;
# serve_smoke at 1024x768). Artifacts compiled on the CPU machine: Qwen-Image, call Y1's (.gpu/Y1/qwen-image-full.tar.xz);
# Flux.2 [dev]: npx compile models/flux2/full.pipeline.json --size 1024x1024,1024x768 --out .gpu/Y4/flux2-dev, then
# tar -cf - -C .gpu/Y4 flux2-dev | xz -T2 -c > .gpu/Y4/pipe-flux2.tar.xz.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/Y1/qwen-image-full.tar.xz, .gpu/Y4/pipe-flux2.tar.xz
set -u
W=/tmp/y4; mkdir -p $W
tar -xJf .gpu/Y1/qwen-image-full.tar.xz -C $W && tar -xJf .gpu/Y4/pipe-flux2.tar.xz -C $W && ls $W
for f in qwen_image flux2; do
  case $f in qwen_image) A=$W/qwen-image ;; *) A=$W/flux2-dev ;; esac
  mkdir -p $OUT/$f && OUT=$OUT/$f sh bench/gpu/serve_sizes.sh $A $f 1024x1024 1024x768 > $OUT/$f.txt 2>&1
  echo "== $f"; grep -vE '^ok ' $OUT/$f.txt | cut -c1-300; echo "smoke checks ok: $(grep -c '^ok ' $OUT/$f.txt)"
  grep -E 'step memo' $OUT/$f/serve.log | head -3 | cut -c1-300
done
