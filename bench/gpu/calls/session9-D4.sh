#!/bin/sh
# Session 9 call D4: the own FP8 GEMM inside the compiled models (policy gemm "own", aa8bc62).
#  1. tiny Flux.2 / Qwen-Image fp8, compiled here by the bundled compiler with and without the policy, against PyTorch;
#  2. full-size Flux.2 transformer and Qwen-Image batch-2 32-token transformer: own vs cuBLASLt outputs on the
#     same synthetic weights and seeded inputs, then the step time alternating, two rounds (profile in the second).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=.gpu/D4/rt/run.sh
mkdir -p /tmp/t /tmp/art && tar -xJf .gpu/D4/full.tar.xz -C /tmp/art
for m in flux2 qwen_image; do for pol in default own; do
  extra=""; [ $pol = own ] && extra="--policy .gpu/D4/own.json"
  timeout 120 sh $RT compile models/tiny/$m --precision fp8 $extra --out /tmp/t/$m-$pol > /dev/null 2>> $L || echo "compile $m $pol failed" | tee -a $L
  timeout 60 sh $RT /tmp/t/$m-$pol --inputs models/tiny/$m --reference models/tiny/$m --min-cosine 0.995 --json > /tmp/t/r.json 2>> $L; echo "tiny $m $pol rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/t/r.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('tiny $m $pol', {k:o.get(k) for k in ('relL2','cosine','passed')})" | tee -a $L
done; done
for m in flux qwen; do
  timeout 150 sh $RT /tmp/art/$m-cub --synthetic-weights 42 --out /tmp/o-$m > /dev/null 2>> $L; echo "$m cuBLASLt outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$m && for f in /tmp/o-$m/output_*; do cp $f /tmp/ref-$m/$(basename $f | sed 's/.synthetic//'); done
  timeout 150 sh $RT /tmp/art/$m-own --synthetic-weights 42 --reference /tmp/ref-$m --json > /tmp/c.json 2>> $L; echo "$m own vs cuBLASLt rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$m own vs cuBLASLt', {k:o.get(k) for k in ('relL2','cosine','finite')})" | tee -a $L
done
for round in 1 2; do for m in flux qwen; do for v in cub own; do
  timeout 150 sh $RT /tmp/art/$m-$v --synthetic-weights 42 --time 20 $( [ $round = 2 ] && echo --profile ) --json > /tmp/s.json 2>> $L; echo "step $m-$v round $round rc $? $(date -u +%T)" | tee -a $L
  [ $round = 2 ] && cp /tmp/s.json $OUT/step-$m-$v.json
  python3 - /tmp/s.json $m-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), ' '.join(f"{k} {v['ms']:.1f}" for k,v in p.items()))
PY
done; done; done
grep -E "tiny |own vs|graph median|rc [1-9]|failed|rror" $L | cut -c1-300
