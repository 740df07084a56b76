#!/bin/sh
# Session 34 call Z2: the full-size models at another size, 1024x768 (64 x 48 token grid), on an H200 (x2 kind for its disk).
# (1) Numerics: diffusers' own QwenImageTransformer2DModel (full config, seeded init) saved by save_pretrained, its output on
#     1024x768 inputs (img_shapes (1, 48, 64), 27 of 256 text tokens kept); the bundled export compiled by the bundled
#     compiler with --weights and --size 1024x768 (the static 64 x 64 export re-specialised: compiler/ir/resize.ts, its RoPE
#     tables rebuilt for the 48 x 64 grid), run on the same inputs, compared (bench/gpu/checkpoint_check.py).
# (2) Speed in one call: the compiled transformers (synthetic weights 42, CUDA graph, --time 20) and diffusers' eager bf16
#     transformers (bench/gpu/baseline_diffusers.py, synthetic weights) at 1024x768 and 1024x1024.
set -u
W=/tmp/z2; mkdir -p $W; RT=.gpu/rt/run.sh
ln -sfn ../../models .gpu/compiler/models
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
mkdir -p $W/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$W/dsrc/src:${PYTHONPATH:-}
( for spec in "qwen_image 1024x768" "qwen_image 1024x1024" "flux2_dev 1024x768 --shape txt_tokens=512" "flux2_dev 1024x1024 --shape txt_tokens=512"; do
    set -- $spec; n=$1; s=$2; shift 2
    sh $RT compile bundled:$n --size $s "$@" --out $W/syn-$n-$s > $W/compile-$n-$s.log 2>&1 || echo "compile $n $s FAILED: $(tail -2 $W/compile-$n-$s.log)"
  done ) > $OUT/compiles.txt 2>&1 &
BG=$!
python3 bench/gpu/checkpoint_check.py make qwen_image --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy --text-valid 27 --size 1024x768 2>&1 | tail -2; echo "make rc $?"
/usr/bin/time -v sh $RT compile bundled:qwen_image --weights $W/ckpt --size 1024x768 --out $W/art --json > $OUT/ckpt-compile.json 2> $OUT/ckpt-compile.log; echo "compile rc $?"
grep -E "Elapsed|Maximum resident" $OUT/ckpt-compile.log; grep -v '^\s' $OUT/ckpt-compile.log | tail -3
sh $RT $W/art --inputs $W/in --out $W/out --time 10 > $OUT/ckpt-run.log 2>&1; echo "run rc $?"; tail -5 $OUT/ckpt-run.log | cut -c1-300
python3 bench/gpu/checkpoint_check.py compare --reference $W/ref.npy --compiled $W/out/output_sample.npy | tee $OUT/ckpt-compare.json
rm -rf $W/ckpt $W/art
wait $BG; cat $OUT/compiles.txt
for s in 1024x768 1024x1024; do
  for n in flux2_dev qwen_image; do
    echo "== compiled $n $s"; sh $RT $W/syn-$n-$s --synthetic-weights 42 --time 20 > $OUT/syn-$n-$s.log 2>&1; echo "rc $?"; grep "CUDA graph median" $OUT/syn-$n-$s.log | cut -c1-200
    echo "== diffusers $n $s"; (cd bench/gpu && python3 baseline_diffusers.py $n --modes eager --iters 5 --size $s --out $OUT/diffusers-$n-$s.json 2>&1 | tail -1)
  done
done
