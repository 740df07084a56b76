#!/bin/sh
# Session 16, call T5 (`D=.gpu/T5 sh THIS`): Qwen-Image end to end at b1099a2's kernels, `npx bench --e2e --no-baseline`
# (no room for diffusers beside the runtime under the carry limit), the pipeline compiled with the 32-token text
# module only (.scratch/pipe/qwen32.pipeline.json: models/qwen_image/full.pipeline.json with textLengths [32]);
# its joules an image from NVML (session 15's e2e energy path, here run on a GPU for the first time).
# Made here: mkdir -p .scratch/pipe && node -e "const p=require('./models/qwen_image/full.pipeline.json');
#   p.tokenizer='../../models/tiny/tokenizer/tokenizer.json'; p.textLengths=[32];
#   require('fs').writeFileSync('.scratch/pipe/qwen32.pipeline.json', JSON.stringify(p))"
#   npx compile .scratch/pipe/qwen32.pipeline.json --target h100 --out /tmp/qp/qwen-image
#   mkdir -p .gpu/T5 && tar -cJf .gpu/T5/pipe.tar.xz -C /tmp/qp qwen-image
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:?}
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/art /tmp/e2e && tar -xJf $D/pipe.tar.xz -C /tmp/art
timeout 400 sh .gpu/rt/run.sh bench --e2e --models qwen_image --artifact qwen_image=/tmp/art/qwen-image --iters 3 --no-baseline --out /tmp/e2e >> $L 2>&1
echo "e2e rc $? at $(date -u +%T)" | tee -a $L
cp /tmp/e2e/bench-e2e.json /tmp/e2e/bench-e2e.md $OUT/ 2>/dev/null
tail -45 $L | cut -c1-400
