#!/bin/sh
# Session 10 call E6: Qwen-Image's 256-token module compiled with the defaults of 78d4474 (image GEMMs on the own
# kernel with their scales in its epilogue; the 256-row text GEMMs, under 264 output tiles, on cuBLASLt with deferred
# scales) against diffusers' bf16 model holding the same weights (27 text tokens), and its step time.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=.gpu/E6
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=$D/rt/run.sh
mkdir -p /tmp/art /tmp/dif && tar -xJf $D/full.tar.xz -C /tmp/art && tar -xJf $D/diffusers-slim.tar.xz -C /tmp/dif
export PYTHONPATH=/tmp/dif/src
W=/tmp/dw; mkdir -p $W
xz -dc $D/fills256-own.json.xz > /tmp/fills256.json
python3 bench/gpu/same_weights.py inputs qwen_image --out $W/q --text-valid 27 >> $L 2>&1; echo "inputs rc $?" | tee -a $L
timeout 150 sh $RT /tmp/art/qwen256-def --synthetic-weights 42 --inputs $W/q --out $W/o256 --time 20 >> $L 2>&1; echo "compiled 256 rc $?" | tee -a $L
timeout 200 python3 bench/gpu/same_weights.py compare qwen_image --fills /tmp/fills256.json --inputs $W/q --compiled $W/o256/output_sample.synthetic.npy --out $OUT/same-o256-def.json 2>&1 | tail -1 | cut -c1-300 | sed "s/^/same weights o256 default: /" | tee -a $L
grep -E "same weights|graph median|rc [1-9]|rror" $L | cut -c1-300
