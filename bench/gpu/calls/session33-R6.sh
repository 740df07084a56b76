#!/bin/sh
# Session 33 call R6: call R5 (bench/gpu/calls/session33-R5.sh) again after the compiler's fix (unquantized fused weights
# copied as row blocks), whose fp32 compile ran out of JS heap there: the bundled Qwen2.5-VL export compiled at
# --precision bf16 from the same kind of checkpoint, against the export's module with the same weights (every token valid).
set -u
W=/tmp/r6; rm -rf $W; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
G=.gpu/R1/te/qwen2_5_vl_7b_text_encoder/model.onnx
python3 bench/gpu/text_encoder_check.py make qwen --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy 2>&1 | grep -v Writing | tail -2 | cut -c1-400; echo "make rc $?"
sh .gpu/rt/run.sh compile $G --target h100 --precision bf16 --weights $W/ckpt --out $W/art > $OUT/compile.log 2>&1; echo "compile rc $?"
grep -E "weights:|gemms:|error|expected" $OUT/compile.log | cut -c1-300
sh .gpu/rt/run.sh $W/art --inputs $W/in-full --out $W/out > $OUT/run.log 2>&1; echo "run rc $?"
tail -3 $OUT/run.log | cut -c1-300
python3 bench/gpu/checkpoint_check.py compare --reference $W/ref-full.npy --compiled $W/out/output_prompt_embeds.npy
