#!/bin/sh
# Session 14 calls P1 and P2 (`D=.gpu/P1 sh THIS`): programmatic dependent launch (PDL) in the models. Runs at
# 8d67e71 (its runtime has --no-pdl); PDL was reverted after these calls (bench/RESULTS.md, session 14).
# Artifacts compiled here at this change (every kernel of ours opens with DC_PDL_ENTRY, templates/preamble.cuh):
# Qwen-Image `--batch 2 --text-length 32`, Flux.2 `--size 1024x1024 --shape txt_tokens=512`, carried as
# $D/art.tar.xz with the runtime ($D/../rt from `npx tsx runtime/gpu/pack.ts`). The baseline is the same
# artifact run with --no-pdl (plain stream order), in the same call:
#  1. outputs with PDL against without, same synthetic weights (42) and inputs (bit-identical expected);
#  2. step time, PDL and --no-pdl alternating, ROUNDS rounds (CUDA-graph median of 20).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:-.gpu/P1}
ROUNDS=${ROUNDS:-3}
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=.gpu/rt/run.sh
mkdir -p /tmp/art && tar -xJf $D/art.tar.xz -C /tmp
for m in qwen flux; do
  timeout 200 sh $RT /tmp/art/$m --synthetic-weights 42 --no-pdl --out /tmp/o-$m > /dev/null 2>> $L; echo "$m no-pdl outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$m && for f in /tmp/o-$m/output_*; do cp $f /tmp/ref-$m/$(basename $f | sed 's/.synthetic//'); done
  timeout 200 sh $RT /tmp/art/$m --synthetic-weights 42 --reference /tmp/ref-$m --json > /tmp/c.json 2>> $L; echo "$m pdl vs no-pdl rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$m pdl vs no-pdl', {k:o.get(k) for k in ('relL2','cosine','finite','maxAbs')})" | tee -a $L
done
for round in $(seq 1 $ROUNDS); do for m in qwen flux; do for v in pdl no-pdl; do
  timeout 200 sh $RT /tmp/art/$m --synthetic-weights 42 --time 20 $( [ $v = no-pdl ] && echo --no-pdl ) --json > /tmp/s.json 2>> $L; echo "step $m-$v round $round rc $? $(date -u +%T)" | tee -a $L
  cp /tmp/s.json $OUT/step-$m-$v-$round.json
  python3 - /tmp/s.json $m-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
t=j['timing']
print(sys.argv[2], 'graph median', round(t['graph']['medianMs'],2), 'min', round(t['graph']['minMs'],2), '| launch by launch', {k: (round(v,2) if isinstance(v,(int,float)) else v) for k,v in t.items() if k!='graph'})
PY
done; done; done
grep -E "vs no-pdl|graph median|rc [1-9]|rror" $L | cut -c1-400
