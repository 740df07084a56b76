#!/bin/sh
# Session 10 call E2: the own GEMM's scaled epilogue with Qwen-Image's bf16 biases read as bf16 (c168bf5).
#  1. the GEMM bench, scaled + bf16 bias (q192s4h), 13 shapes, against cuBLASLt;
#  2. Qwen-Image batch-2 32-token transformer: own (auto) against the cuBLASLt build, same synthetic weights and inputs;
#  3. Qwen-Image 256-token module compiled with the own GEMM against diffusers' bf16 model holding the same weights (27 text tokens);
#  4. step time: Qwen-Image and Flux.2, cuBLASLt against own, alternating, two rounds (profile in the second).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=.gpu/E2
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=$D/rt/run.sh
mkdir -p /tmp/art /tmp/dif && tar -xJf $D/full.tar.xz -C /tmp/art && tar -xJf $D/diffusers-slim.tar.xz -C /tmp/dif
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error"
timeout 120 /tmp/go $D/gemmh > $OUT/gemm.txt 2>&1; echo "gemm harness exit $?" | tee -a $L
for m in qwen; do
  timeout 150 sh $RT /tmp/art/$m-cub --synthetic-weights 42 --out /tmp/o-$m > /dev/null 2>> $L; echo "$m cuBLASLt outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$m && for f in /tmp/o-$m/output_*; do cp $f /tmp/ref-$m/$(basename $f | sed 's/.synthetic//'); done
  timeout 150 sh $RT /tmp/art/$m-own --synthetic-weights 42 --reference /tmp/ref-$m --json > /tmp/c.json 2>> $L; echo "$m own vs cuBLASLt rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$m own vs cuBLASLt', {k:o.get(k) for k in ('relL2','cosine','finite')})" | tee -a $L
done
export PYTHONPATH=/tmp/dif/src
W=/tmp/dw; mkdir -p $W
xz -dc $D/fills256-own.json.xz > /tmp/fills256.json
python3 bench/gpu/same_weights.py inputs qwen_image --out $W/q --text-valid 27 >> $L 2>&1; echo "inputs rc $?" | tee -a $L
timeout 150 sh $RT /tmp/art/qwen256-own --synthetic-weights 42 --inputs $W/q --out $W/o256 >> $L 2>&1; echo "compiled 256 own rc $?" | tee -a $L
timeout 200 python3 bench/gpu/same_weights.py compare qwen_image --fills /tmp/fills256.json --inputs $W/q --compiled $W/o256/output_sample.synthetic.npy --out $OUT/same-o256-own.json 2>&1 | tail -1 | cut -c1-300 | sed "s/^/same weights o256 own: /" | tee -a $L
for round in 1 2; do for m in qwen flux; do for v in cub own; do
  timeout 150 sh $RT /tmp/art/$m-$v --synthetic-weights 42 --time 20 $( [ $round = 2 ] && echo --profile ) --json > /tmp/s.json 2>> $L; echo "step $m-$v round $round rc $? $(date -u +%T)" | tee -a $L
  [ $round = 2 ] && cp /tmp/s.json $OUT/step-$m-$v.json
  python3 - /tmp/s.json $m-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), ' '.join(f"{k} {v['ms']:.1f}" for k,v in p.items()))
PY
done; done; done
grep -E "vs cuBLASLt|same weights|graph median|rc [1-9]|failed|rror" $L | cut -c1-300
cat $OUT/gemm.txt | cut -c1-220
