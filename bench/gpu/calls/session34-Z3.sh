#!/bin/sh
# Session 34 call Z3: part (1) of call Z2 again (its reference forward had lost the grid argument; fixed): diffusers' own
# QwenImageTransformer2DModel (full config, seeded init, save_pretrained) against the bundled export compiled with
# --weights and --size 1024x768 (re-specialised from its static 64 x 64 grid), on 1024x768 inputs with 27 of 256 text tokens.
set -u
W=/tmp/z3; mkdir -p $W; RT=.gpu/rt/run.sh
ln -sfn ../../models .gpu/compiler/models
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
mkdir -p $W/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$W/dsrc/src:${PYTHONPATH:-}
python3 bench/gpu/checkpoint_check.py make qwen_image --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy --text-valid 27 --size 1024x768 > $OUT/make.log 2>&1; echo "make rc $?"; tail -1 $OUT/make.log | cut -c1-300
/usr/bin/time -v sh $RT compile bundled:qwen_image --weights $W/ckpt --size 1024x768 --out $W/art --json > $OUT/ckpt-compile.json 2> $OUT/ckpt-compile.log; echo "compile rc $?"
grep -E "Elapsed|Maximum resident" $OUT/ckpt-compile.log; grep -v '^\s' $OUT/ckpt-compile.log | tail -3
sh $RT $W/art --inputs $W/in --out $W/out --time 10 > $OUT/ckpt-run.log 2>&1; echo "run rc $?"; tail -4 $OUT/ckpt-run.log | cut -c1-300
python3 bench/gpu/checkpoint_check.py compare --reference $W/ref.npy --compiled $W/out/output_sample.npy | tee $OUT/ckpt-compare.json
