#!/bin/sh
# Session 11 call F9: Flux.2 [dev] end to end at 45ed411 against diffusers' stages in the same call (issues 7, 9);
# the pipeline compiled here from models/flux2/full.pipeline.json, whose graphs are now bundled:NAME (models/full).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${1:-.gpu/F9}
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/art /tmp/dif && tar -xJf $D/pipes.tar.xz -C /tmp/art && tar -xJf $D/diffusers-slim.tar.xz -C /tmp/dif
for m in $( [ "$D" = .gpu/E3b ] && echo qwen_image:qwen-image || echo flux2:flux2-dev ); do
  name=${m%%:*}; dir=${m#*:}
  mkdir -p /tmp/e2e-$name
  DIFFUSERS_SRC=/tmp/dif/src timeout 280 sh $D/rt/run.sh bench --e2e --models $name --artifact $name=/tmp/art/$dir --iters 3 --baseline-script bench/gpu/baseline_e2e.py --out /tmp/e2e-$name >> $L 2>&1
  echo "e2e $name rc $? at $(date -u +%T)" | tee -a $L
  cp /tmp/e2e-$name/bench-e2e.json $OUT/e2e-$name.json; cp /tmp/e2e-$name/bench-e2e.md $OUT/e2e-$name.md
done
grep -E "compiled end to end|diffusers|rc [1-9]|rror|identical|DIFFERENT" $L | cut -c1-300
