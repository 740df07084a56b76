#!/bin/sh
# Session 11 call F5: the models with this session's attention kernels (descriptors made once; the stale
# running max for bf16 P·V, which Qwen-Image's FP8 Q·Kᵀ kernel takes and Flux.2's does not) against 699e6ec's.
# Artifacts compiled here (DC_KERNEL_CACHE warm): Qwen-Image `--batch 2 --text-length 32`, Flux.2 `--size
# 1024x1024 --shape txt_tokens=512`, each at 699e6ec (old) and 5335af2 (new); Qwen-Image's 256-token module
# at 5335af2 for the same-weights check (`run-cli ART --synthetic-fills 42`). Runtime: `npx tsx runtime/gpu/pack.ts`.
#  1. new against old on the same synthetic weights (42) and inputs: rel. L2 / cosine of the outputs;
#  2. step time, old and new alternating, two rounds (CUDA-graph median of 20);
#  3. Qwen-Image 256-token module against diffusers' bf16 model with the same weights (27 text tokens).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=.gpu/F5
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=$D/rt/run.sh
mkdir -p /tmp/art /tmp/dif && tar -xJf $D/art.tar.xz -C /tmp/art && tar -xJf $D/diffusers-slim.tar.xz -C /tmp/dif
for m in qwen flux; do
  timeout 200 sh $RT /tmp/art/$m-old --synthetic-weights 42 --out /tmp/o-$m > /dev/null 2>> $L; echo "$m old outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$m && for f in /tmp/o-$m/output_*; do cp $f /tmp/ref-$m/$(basename $f | sed 's/.synthetic//'); done
  timeout 200 sh $RT /tmp/art/$m-new --synthetic-weights 42 --reference /tmp/ref-$m --json > /tmp/c.json 2>> $L; echo "$m new vs old rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$m new vs old', {k:o.get(k) for k in ('relL2','cosine','finite')})" | tee -a $L
done
for round in 1 2; do for m in qwen flux; do for v in old new; do
  timeout 200 sh $RT /tmp/art/$m-$v --synthetic-weights 42 --time 20 $( [ $round = 2 ] && echo --profile ) --json > /tmp/s.json 2>> $L; echo "step $m-$v round $round rc $? $(date -u +%T)" | tee -a $L
  [ $round = 2 ] && cp /tmp/s.json $OUT/step-$m-$v.json
  python3 - /tmp/s.json $m-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), ' '.join(f"{k} {v['ms']:.1f}" for k,v in p.items()))
PY
done; done; done
export PYTHONPATH=/tmp/dif/src
W=/tmp/dw; mkdir -p $W
xz -dc $D/fills256.json.xz > /tmp/fills256.json
python3 bench/gpu/same_weights.py inputs qwen_image --out $W/q --text-valid 27 >> $L 2>&1; echo "inputs rc $?" | tee -a $L
timeout 200 sh $RT /tmp/art/qwen256-new --synthetic-weights 42 --inputs $W/q --out $W/o256 >> $L 2>&1; echo "compiled 256 new rc $?" | tee -a $L
timeout 240 python3 bench/gpu/same_weights.py compare qwen_image --fills /tmp/fills256.json --inputs $W/q --compiled $W/o256/output_sample.synthetic.npy --out $OUT/same-o256-new.json 2>&1 | tail -1 | cut -c1-300 | sed "s/^/same weights o256 new: /" | tee -a $L
grep -E "new vs old|same weights|graph median|rc [1-9]|failed|rror" $L | cut -c1-300
