#!/bin/sh
# Session 34 call Z5: `npx bench --size 1024x768` (the per-step bench at another image size) with its PyTorch baselines in
# the same run, on the card lent (an H200). The artifacts compiled on the host by the bundled compiler first: Flux.2 [dev] at
# 1024x768 with 512 text tokens; Qwen-Image at 1024x768, batch 2 (both CFG passes), 32 text tokens (as issue 7's step).
# diffusers eager (bench/gpu/baseline_diffusers.py --size), diffusers 58eb52c's src on PYTHONPATH.
set -u
W=/tmp/z5; mkdir -p $W; RT=.gpu/rt/run.sh
ln -sfn ../../models .gpu/compiler/models
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p $W/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C $W/dsrc
sh $RT compile bundled:flux2_dev --size 1024x768 --shape txt_tokens=512 --out $W/flux > $W/cf.log 2>&1 & P1=$!
sh $RT compile bundled:qwen_image --size 1024x768 --batch 2 --text-length 32 --out $W/qwen > $W/cq.log 2>&1 & P2=$!
wait $P1; echo "flux compile rc $?"; wait $P2; echo "qwen compile rc $?"; tail -2 $W/cf.log $W/cq.log
export DIFFUSERS_SRC=$W/dsrc/src DC_GEMM_TUNING=/tmp/gemm-tuning.json
rm -rf /tmp/bench && mkdir -p /tmp/bench
timeout 480 sh $RT bench --size 1024x768 --models flux2_dev,qwen_image --artifact flux2_dev=$W/flux --artifact qwen_image=$W/qwen \
  --iters 20 --baseline-script bench/gpu/baseline_diffusers.py --out /tmp/bench > $OUT/bench.log 2>&1
echo "bench rc $?"
for f in /tmp/bench/*.md /tmp/bench/*.json; do cp "$f" "$OUT/$(basename "$f")"; done
cat /tmp/bench/*.md | head -40
