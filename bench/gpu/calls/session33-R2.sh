#!/bin/sh
# Session 33 call R2: call R1 (bench/gpu/calls/session33-R1.sh) for Flux.2 [dev]: diffusers' Flux2Transformer2DModel at its
# full config, initialised by its own code (seed 0), written by save_pretrained (64 GB), the bundled flux2_dev export compiled
# from that folder with --weights at 4096 + 512 tokens, run on the same inputs as diffusers' model. A 128 GiB-disk x2
# machine (64 GB checkpoint + 32 GB weights.bin); one GPU used.
set -u
rm -rf /tmp/r1; W=/tmp/r2; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
nproc; df -h /tmp | tail -1; nvcc --version | tail -1
mkdir -p $W/dsrc && tar -xJf .gpu/R1/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$(ls -d $W/dsrc/*/ 2>/dev/null | head -1):$W/dsrc:${PYTHONPATH:-}
ls $W/dsrc | head -3
python3 bench/gpu/checkpoint_check.py make flux2_dev --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy 2>&1 | tail -3; echo "make rc $?"
ls -la $W/ckpt
python3 -c "import json; m=json.load(open('$W/ckpt/diffusion_pytorch_model.safetensors.index.json'))['weight_map']; ks=sorted(m); print(len(ks), ks[:3], ks[-2:])"
/usr/bin/time -v sh .gpu/rt/run.sh compile .gpu/R1/flux2_dev/model.onnx --target h100 --shape img_tokens=4096,txt_tokens=512 --weights $W/ckpt --out $W/art --json > $OUT/compile.json 2> $OUT/compile.log; echo "compile rc $?"
grep -v '^\s' $OUT/compile.log | tail -8; grep -E "Elapsed|Maximum resident|Percent of CPU" $OUT/compile.log
ls -la $W/art
sh .gpu/rt/run.sh $W/art --inputs $W/in --out $W/out --time 10 > $OUT/run.log 2>&1; echo "run rc $?"
tail -12 $OUT/run.log | cut -c1-400
python3 bench/gpu/checkpoint_check.py compare --reference $W/ref.npy --compiled $W/out/output_sample.npy | tee $OUT/compare.json
