#!/bin/sh
# Session 20 call W1 (W2: MODELS=flux): the compiled transformers against diffusers' bf16 models holding the same
# (synthetic) weights, one step, before (e0352d3, old) and with the residual epilogue (new): issue 7's cosine >= 0.99.
# bench/gpu/same_weights.py (inputs, the compiled run on them, compare). .gpu/W1: art.tar.xz (qwen256-{old,new}: the
# 256-token batch-1 Qwen-Image module, `npx compile bundled:qwen_image --target h100`; flux-{old,new}: R1's), the fills
# (`run-cli ART --synthetic-fills 42`, xz), diffusers' src at 58eb52c (the mirror's HEAD, `git archive`).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:-.gpu/W1} L=$OUT/log.txt RT=.gpu/rt/run.sh
date -u | tee $L
nvidia-smi --query-gpu=name,serial,driver_version,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/w /tmp/dif && tar -xJf $D/art.tar.xz -C /tmp/w && tar -xJf $D/diffusers-src.tar.xz -C /tmp/dif
export PYTHONPATH=/tmp/dif/src
for m in ${MODELS:-qwen}; do
  if [ $m = qwen ]; then M=qwen_image A=qwen256 F=fills-qwen256 X="--text-valid 27"; else M=flux2_dev A=flux F=fills-flux X=""; fi
  xz -dc $D/$F.json.xz > /tmp/$F.json
  python3 bench/gpu/same_weights.py inputs $M --out /tmp/in-$m $X >> $L 2>&1; echo "$m inputs rc $?" | tee -a $L
  for v in old new; do
    timeout 200 sh $RT /tmp/w/art/$A-$v --synthetic-weights 42 --inputs /tmp/in-$m --out /tmp/o-$m-$v >> $L 2>&1; echo "$m-$v compiled rc $?" | tee -a $L
    timeout 280 python3 bench/gpu/same_weights.py compare $M --fills /tmp/$F.json --inputs /tmp/in-$m --compiled /tmp/o-$m-$v/output_sample.synthetic.npy --out $OUT/same-$m-$v.json 2>&1 | tail -1 | cut -c1-300 | sed "s/^/same weights $m-$v: /" | tee -a $L
  done
done
grep -E "same weights|rc [1-9]|rror" $L | cut -c1-300
