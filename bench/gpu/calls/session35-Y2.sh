#!/bin/sh
# Session 35 call Y2: numerics at an image size whose grids leave partial tiles everywhere, 1216x832 (a 76 x 52 token grid,
# 3952 image tokens; latents 152 x 104). Until now only 1024x768 (3072 tokens, whole tiles) had run on a GPU.
# (1) GPU 0: diffusers' own QwenImageTransformer2DModel (full config, seeded init, save_pretrained) against the bundled static
#     export compiled with --weights and --size 1216x832, on 1216x832 inputs with 27 of 256 text tokens (call Z3's method).
# (2) GPU 1: the same for Flux2Transformer2DModel, the bundled export compiled with --weights --size 1216x832 (its symbolic
#     img_tokens bound to 3952) and 512 text tokens.
# (3) GPU 2: the tiny VAE decoders compiled here for 152 x 104 latents (`npx compile models/tiny/NAME/model.onnx --size 1216x832`
#     then, when --size took 8 image pixels a latent pixel for every VAE; now `--size 304x208`: a decoder alone uses its own
#     factor, the tiny ones' 2) against onnxruntime's outputs on the re-specialised graphs (bench/gpu/size-reference.ts,
#     seed 1, the same rule: then 1216x832, now 304x208): rel. L2 <= 1e-2.
# carry: .gpu/rt, .gpu/compiler (npx tsx runtime/gpu/pack.ts), .gpu/E32/diffusers-src.tar.xz, .gpu/Y2/vae.tar.xz
# (art-*/ and ref-*/ of (3)); `nvidia-h200-x4` for its disk (two checkpoints of 41 and 64 GB and their artifacts).
set -u
W=/tmp/y2; mkdir -p $W; RT=.gpu/rt/run.sh
nvidia-smi --query-gpu=index,name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p $W/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$W/dsrc/src:${PYTHONPATH:-}
tar -xJf .gpu/Y2/vae.tar.xz -C $W
check() { # GPU MODEL EXTRA_MAKE EXTRA_COMPILE
  g=$1 m=$2; D=$W/$m; mkdir -p $D
  CUDA_VISIBLE_DEVICES=$g python3 bench/gpu/checkpoint_check.py make $m --ckpt $D/ckpt --inputs $D/in --reference $D/ref.npy --size 1216x832 $3 > $OUT/$m-make.log 2>&1; echo "$m make rc $?"
  /usr/bin/time -f "$m compile %e s, %M KB peak" sh $RT compile bundled:$m --weights $D/ckpt --size 1216x832 $4 --out $D/art > $OUT/$m-compile.log 2>&1; echo "$m compile rc $?"; tail -1 $OUT/$m-compile.log
  rm -rf $D/ckpt
  CUDA_VISIBLE_DEVICES=$g sh $RT $D/art --inputs $D/in --out $D/out --time 10 > $OUT/$m-run.log 2>&1; echo "$m run rc $?"; grep -iE "median|graph" $OUT/$m-run.log | tail -2 | cut -c1-300
  python3 bench/gpu/checkpoint_check.py compare --reference $D/ref.npy --compiled $D/out/output_sample.npy > $OUT/$m-compare.json; echo "$m: $(cat $OUT/$m-compare.json)"
}
check 0 qwen_image "--text-valid 27" "" > $OUT/qwen.txt 2>&1 &
check 1 flux2_dev "" "--shape txt_tokens=512" > $OUT/flux.txt 2>&1 &
for n in flux2_vae_decoder qwen_image_vae_decoder; do
  CUDA_VISIBLE_DEVICES=2 sh $RT $W/art-$n --inputs $W/ref-$n --reference $W/ref-$n --max-rel-l2 1e-2 --json > $OUT/vae-$n.json 2> $OUT/vae-$n.err; echo "tiny $n 1216x832 rc $?"; tail -1 $OUT/vae-$n.json | cut -c1-500; tail -2 $OUT/vae-$n.err | cut -c1-300
done
wait; cat $OUT/qwen.txt $OUT/flux.txt
