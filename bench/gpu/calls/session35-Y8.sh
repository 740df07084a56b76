#!/bin/sh
# Session 35 call Y8: Qwen-Image at a full-size portrait, 832x1216 (a 52 x 76 token grid: 76 rows, 52 columns; 3952 image
# tokens, as 1216x832 in call Y2 but transposed): diffusers' own QwenImageTransformer2DModel (full config, seeded init,
# save_pretrained) against the bundled static export compiled with --weights and --size 832x1216 (its RoPE tables rebuilt
# for rows longer than columns), on 832x1216 inputs with 27 of 256 text tokens (call Z3's method, bench/gpu/checkpoint_check.py).
# carry: .gpu/rt, .gpu/compiler (npx tsx runtime/gpu/pack.ts), .gpu/E32/diffusers-src.tar.xz; `nvidia-h200-x2` for its disk.
set -u
W=/tmp/y8; mkdir -p $W; RT=.gpu/rt/run.sh; D=$W/qwen_image; mkdir -p $D
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
mkdir -p $W/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$W/dsrc/src:${PYTHONPATH:-}
python3 bench/gpu/checkpoint_check.py make qwen_image --ckpt $D/ckpt --inputs $D/in --reference $D/ref.npy --size 832x1216 --text-valid 27 > $OUT/make.log 2>&1; echo "make rc $?"
/usr/bin/time -f "compile %e s, %M KB peak" sh $RT compile bundled:qwen_image --weights $D/ckpt --size 832x1216 --out $D/art > $OUT/compile.log 2>&1; echo "compile rc $?"; tail -1 $OUT/compile.log
rm -rf $D/ckpt
sh $RT $D/art --inputs $D/in --out $D/out --time 10 > $OUT/run.log 2>&1; echo "run rc $?"; grep -iE "median" $OUT/run.log | tail -2 | cut -c1-300
python3 bench/gpu/checkpoint_check.py compare --reference $D/ref.npy --compiled $D/out/output_sample.npy | tee $OUT/compare.json
