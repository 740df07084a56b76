#!/bin/sh
# Session 33 call R1: a real safetensors checkpoint through `npx compile --weights`, at full size, against diffusers' own
# model. bench/gpu/checkpoint_check.py builds diffusers' QwenImageTransformer2DModel at its full config on the GPU with
# diffusers' own (seeded) initialisation, writes it with save_pretrained (sharded safetensors, index, config.json), writes
# inputs (27 valid text tokens of 256) and diffusers' output on them (its own complex RoPE). The bundled compiler
# (.gpu/compiler, this tree) then compiles the bundled Qwen-Image export (.gpu/R1/qwen_image/model.onnx, structure only)
# with --weights pointing at that folder, on the host (nvcc there), and run-cli runs the artifact on the same inputs
# (its real 20 GB weights.bin; --time 10 for the step). An x2 machine for its 128 GiB disk (40.7 GB checkpoint + 20.4 GB
# weights.bin); one GPU used.
set -u
W=/tmp/r1; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
nproc; df -h /tmp | tail -1; nvcc --version | tail -1
mkdir -p $W/dsrc && tar -xJf .gpu/R1/diffusers-src.tar.xz -C $W/dsrc && export PYTHONPATH=$(ls -d $W/dsrc/*/ 2>/dev/null | head -1):$W/dsrc:${PYTHONPATH:-}
ls $W/dsrc | head -3
python3 bench/gpu/checkpoint_check.py make qwen_image --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy --text-valid 27 2>&1 | tail -3; echo "make rc $?"
ls -la $W/ckpt
python3 -c "import json; m=json.load(open('$W/ckpt/diffusion_pytorch_model.safetensors.index.json'))['weight_map']; ks=sorted(m); print(len(ks), ks[:3], ks[-2:])"
/usr/bin/time -v sh .gpu/rt/run.sh compile .gpu/R1/qwen_image/model.onnx --target h100 --weights $W/ckpt --out $W/art --json > $OUT/compile.json 2> $OUT/compile.log; echo "compile rc $?"
grep -v '^\s' $OUT/compile.log | tail -8; grep -E "Elapsed|Maximum resident|Percent of CPU" $OUT/compile.log
ls -la $W/art
sh .gpu/rt/run.sh $W/art --inputs $W/in --out $W/out --time 10 > $OUT/run.log 2>&1; echo "run rc $?"
tail -12 $OUT/run.log | cut -c1-400
python3 bench/gpu/checkpoint_check.py compare --reference $W/ref.npy --compiled $W/out/output_sample.npy | tee $OUT/compare.json
