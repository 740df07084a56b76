#!/bin/sh
# Session 16, call T4 (`D=.gpu/T4 sh THIS`): `npx bench` on the GPU with the session's artifacts (b1099a2, synthetic
# weights, no diffusers baseline): its compiled rows, now with the board's joules a step (NVML, session 15's
# energy path, here run on a GPU for the first time), and the launch-by-launch stage split.
set -u
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:?}
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
tar -xJf $D/art.tar.xz -C /tmp
mkdir -p /tmp/bench
timeout 400 sh .gpu/rt/run.sh bench --models flux2_dev,qwen_image --artifact flux2_dev=/tmp/art/flux --artifact qwen_image=/tmp/art/qwen --no-baseline --iters 20 --out /tmp/bench >> $L 2>&1
echo "bench rc $?" | tee -a $L
cp /tmp/bench/*.json /tmp/bench/*.md $OUT/ 2>/dev/null
tail -40 $L | cut -c1-400
