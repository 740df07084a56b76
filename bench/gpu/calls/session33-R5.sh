#!/bin/sh
# Session 33 call R5: call R4 found the compiled Qwen2.5-VL text encoder (FP8) at cosine 0.83-0.85 against the export's
# module with the same checkpoint on every row, padded or not (bf16's compile ran out of JS heap). Is it FP8's error
# amplified by a randomly initialised 28-layer network, or a bug? (a) the export's module with FP8 weights alone, in
# PyTorch, against itself with bf16 weights; (b) the export compiled at --precision fp32 (weights kept as stored, no FP8).
set -u
W=/tmp/r5; rm -rf $W; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
G=.gpu/R1/te/qwen2_5_vl_7b_text_encoder/model.onnx
python3 bench/gpu/text_encoder_check.py make qwen --weight-fp8 --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy 2>&1 | grep -v Writing | tail -2 | cut -c1-400; echo "make rc $?"
sh .gpu/rt/run.sh compile $G --target h100 --precision fp32 --weights $W/ckpt --out $W/art > $OUT/compile.log 2>&1; echo "compile rc $?"
grep -E "weights:|gemms:|error|expected" $OUT/compile.log | cut -c1-300
sh .gpu/rt/run.sh $W/art --inputs $W/in-full --out $W/out > $OUT/run.log 2>&1; echo "run rc $?"
tail -3 $OUT/run.log | cut -c1-300
python3 bench/gpu/checkpoint_check.py compare --reference $W/ref-full.npy --compiled $W/out/output_prompt_embeds.npy
