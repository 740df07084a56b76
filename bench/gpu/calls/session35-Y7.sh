#!/bin/sh
# Session 35 call Y7: the tiny networks compiled for the portrait size 48x80 on the GPU, against PyTorch's modules at 48x80
# (test/fixtures/pipeline_reference/modules_48x80, call Y6): transformers FP8, cosine >= 0.995; VAE decoders, rel. L2 <= 1e-2
# (call Z1's bars at 80x48). Then the landscape transformer (80x48) on the portrait inputs, which have the same shapes:
# predicted: Qwen-Image's misses the bar (its RoPE is its own grid's: why a pipeline picks modules by size, Executor.forSize),
# Flux.2's does not (its RoPE comes from the img_ids values). As run: Qwen-Image's landscape module stayed inside the cosine
# bar on this tiny random model (rel. L2 4.0e-3 against the portrait module's 2.2e-3); the bar does not tell them apart here. .gpu/Y7/{flux2,qwen_image}.tar.xz: the tiny pipelines compiled here for
# 64x64,80x48,48x80 (`npx compile models/F/tiny.pipeline.json --size 64x64,80x48,48x80 --out .gpu/Y7/F`), only the modules
# used below. carry: .gpu/rt (without sharp.tar.xz), .gpu/Y7/flux2.tar.xz, .gpu/Y7/qwen_image.tar.xz.
set -u
W=/tmp/y7; mkdir -p $W; RT=.gpu/rt/run.sh
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
for f in flux2 qwen_image; do mkdir -p $W/$f && tar -xJf .gpu/Y7/$f.tar.xz -C $W/$f; done
R=test/fixtures/pipeline_reference/modules_48x80
for f in flux2 qwen_image; do
  for m in transformer_48x80 transformer_80x48; do
    sh $RT $W/$f/$m --weights-from $W/$f/transformer --inputs $R/$f --reference $R/$f --min-cosine 0.995 > $W/t.log 2>&1; echo "tiny $f $m on 48x80 inputs rc $?"; grep "vs reference" $W/t.log | cut -c1-200
  done
  sh $RT $W/$f/vae_decoder_48x80 --weights-from $W/$f/vae_decoder --inputs $R/${f}_vae_decoder --reference $R/${f}_vae_decoder --max-rel-l2 1e-2 > $W/v.log 2>&1; echo "tiny $f vae_decoder_48x80 rc $?"; grep "vs reference" $W/v.log | cut -c1-200
done 2>&1 | tee $OUT/tiny-48x80.txt
