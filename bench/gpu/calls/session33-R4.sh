#!/bin/sh
# Session 33 call R4: why call R3's text encoders came out at cosine 0.83 against the export's module with the same
# checkpoint (both families). Qwen2.5-VL only: the same checkpoint, two input sets (61 of 290 tokens valid, and all valid),
# the export compiled at fp8 (the default) and at bf16, each run on both sets; each compared by rows (valid / padding).
set -u
W=/tmp/r4; rm -rf /tmp/r3 $W; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
G=.gpu/R1/te/qwen2_5_vl_7b_text_encoder/model.onnx
python3 bench/gpu/text_encoder_check.py make qwen --ckpt $W/ckpt --inputs $W/in --reference $W/ref.npy 2>&1 | tail -1 | cut -c1-300; echo "make rc $?"
for p in fp8 bf16; do
  sh .gpu/rt/run.sh compile $G --target h100 --precision $p --weights $W/ckpt --out $W/art-$p > $OUT/compile-$p.log 2>&1; echo "compile $p rc $?"
  grep -E "weights:|gemms:" $OUT/compile-$p.log | cut -c1-300
  for s in "" -full; do
    sh .gpu/rt/run.sh $W/art-$p --inputs $W/in$s --out $W/out-$p$s > $OUT/run-$p$s.log 2>&1; echo "run $p$s rc $?"
    echo "== $p inputs$s"; python3 bench/gpu/checkpoint_check.py compare --reference $W/ref$s.npy --compiled $W/out-$p$s/output_prompt_embeds.npy --valid 61 --length 290
  done
done
