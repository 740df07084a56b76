#!/bin/sh
# Session 21 call E1: Qwen-Image end to end (`npx bench --e2e`, 8 steps, 1024x1024, its CFG pair in one batch-2 run on
# the 32-token module, the step memo off) with the pipeline of .scratch/pipe/qwen32.pipeline.json compiled at HEAD
# 23c969c (old) and with fuse-vquant (new), .gpu/E1s21/pipes.tar.xz, alternating, ROUNDS rounds: the PNGs' sha256 (the
# negative prompt is padded: its dropped text keys exercise the amax epilogue's key mask) and the stage times.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
L=$OUT/log.txt
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $L
mkdir -p /tmp/pipes && tar -xJf .gpu/E1s21/pipes.tar.xz -C /tmp/pipes
for round in $(seq ${ROUNDS:-2}); do for v in old new; do
  rm -rf /tmp/e2e && mkdir -p /tmp/e2e
  DC_STEP_MEMO_MB=0 timeout 250 sh .gpu/rt/run.sh bench --e2e --models qwen_image --artifact qwen_image=/tmp/pipes/$v --iters 3 --no-baseline --out /tmp/e2e > /tmp/e2e.log 2>&1
  echo "e2e $v round $round rc $? at $(date -u +%T)" | tee -a $L
  grep -E "PNG" /tmp/e2e.log | sed "s/^/$v: /" | tee -a $L
  grep -E "^\| (text encode|denoise|VAE decode|image encode|\*\*total)" /tmp/e2e/bench-e2e.md | sed "s/^/$v: /" | tee -a $L
  cp /tmp/e2e/bench-e2e.md $OUT/bench-e2e-$v-r$round.md
done; done
