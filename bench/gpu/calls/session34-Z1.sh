#!/bin/sh
# Session 34 call Z1: pipelines at several sizes on the GPU. (1) The tiny pipelines compiled here for 64x64 and 80x48
# (.gpu/Z1c: each family's transformer, transformer_80x48, vae_decoder, vae_decoder_80x48, built on the CPU machine):
# the 80x48 modules, run over the first modules' device weights (--weights-from), against PyTorch's modules at 80x48
# (test/fixtures/pipeline_reference/modules_80x48; transformers FP8: cosine >= 0.995, VAE decoders bf16: rel. L2 <= 1e-2).
# (2) The full-size exports compiled on the host by the bundled compiler for 1024x768 (transformers FP8, synthetic weights
# 42; VAE decoders) and at 1024x1024 beside them: step time by CUDA graph (--time 20).
set -u
W=/tmp/z1; mkdir -p $W; RT=.gpu/rt/run.sh
# The bundled compiler finds bundled:NAME under its own root (the first run lacked this link: every full compile failed
# at once; the full part then ran again, on the same machine, with it).
ln -sfn ../../models .gpu/compiler/models
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
for f in flux2 qwen_image; do mkdir -p $W/$f && tar -xJf .gpu/Z1c/$f.tar.xz -C $W/$f; done
# Full-size compiles on the host in the background while the tiny checks run.
( for spec in "qwen_image 1024x768" "qwen_image 1024x1024" "flux2_dev 1024x768 --shape txt_tokens=512" "flux2_dev 1024x1024 --shape txt_tokens=512" \
              "qwen_image_vae_decoder 1024x768" "flux2_vae_decoder 1024x768"; do
    set -- $spec; n=$1; s=$2; shift 2
    /usr/bin/time -f "$n $s compile %e s" sh $RT compile bundled:$n --size $s "$@" --out $W/full-$n-$s > $W/compile-$n-$s.log 2>&1 || echo "compile $n $s FAILED: $(tail -2 $W/compile-$n-$s.log)"
  done ) > $OUT/compiles.txt 2>&1 &
BG=$!
R=test/fixtures/pipeline_reference/modules_80x48
for f in flux2 qwen_image; do
  sh $RT $W/$f/transformer_80x48 --weights-from $W/$f/transformer --inputs $R/$f --reference $R/$f --min-cosine 0.995 --json > $W/t.json 2> $W/t.err; echo "tiny $f transformer 80x48 rc $?"; tail -1 $W/t.json | cut -c1-600 | tee -a $OUT/tiny.jsonl; tail -2 $W/t.err
  sh $RT $W/$f/vae_decoder_80x48 --weights-from $W/$f/vae_decoder --inputs $R/${f}_vae_decoder --reference $R/${f}_vae_decoder --max-rel-l2 1e-2 --json > $W/v.json 2> $W/v.err; echo "tiny $f vae 80x48 rc $?"; tail -1 $W/v.json | cut -c1-600 | tee -a $OUT/tiny.jsonl; tail -2 $W/v.err
done
wait $BG; cat $OUT/compiles.txt
for a in $W/full-*; do
  n=$(basename $a); echo "== $n"; sh $RT $a --synthetic-weights 42 --time 20 > $OUT/run-$n.log 2>&1; echo "rc $?"; grep -iE "graph|median|ms|memory" $OUT/run-$n.log | tail -4 | cut -c1-300
done
