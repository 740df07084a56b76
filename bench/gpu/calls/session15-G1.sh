#!/bin/sh
# Session 15 model variants in the power-capped step (`D=.gpu/G1 MODELS="flux qwen" VARIANTS="g8 gx gy" ROUNDS=3
# [PROFILE=1] sh THIS`; calls G1, G2, G6, G8). Artifacts compiled here as $D/art/MODEL-VARIANT (tarred as $D/art.tar.xz), the
# runtime of `npx tsx runtime/gpu/pack.ts` (.gpu/rt), carried.
#  1. outputs: each model's first variant on synthetic weights 42 and seeded inputs; the others against it;
#  2. step time, the variants alternating, ROUNDS rounds (CUDA-graph median of 20), nvidia-smi sampling the
#     SM clock and power every 100 ms during each run (median of the samples above 400 W); the joules a run
#     where the runtime reports them (from session 15's d164600);
#  3. with PROFILE=1, each model's first variant once more with --profile (each launch timed alone), its JSON
#     kept as $OUT/profile-MODEL.json.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:?} MODELS=${MODELS:?} VARIANTS=${VARIANTS:?} ROUNDS=${ROUNDS:-3}
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=.gpu/rt/run.sh
tar -xJf $D/art.tar.xz -C /tmp
for m in $MODELS; do
  set -- $VARIANTS; R=$m-$1
  timeout 200 sh $RT /tmp/art/$R --synthetic-weights 42 --out /tmp/o-$R > /dev/null 2>> $L; echo "$R outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$R && for f in /tmp/o-$R/output_*; do cp $f /tmp/ref-$R/$(basename $f | sed 's/.synthetic//'); done
  shift; for v in "$@"; do
    timeout 200 sh $RT /tmp/art/$m-$v --synthetic-weights 42 --reference /tmp/ref-$R --json > /tmp/c.json 2>> $L; echo "$m-$v vs $R rc $?" | tee -a $L
    python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$m-$v vs $R', {k:o.get(k) for k in ('relL2','cosine','finite','maxAbs')})" | tee -a $L
  done
  for round in $(seq 1 $ROUNDS); do for v in $VARIANTS; do
    nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 100 > /tmp/smi.csv 2>/dev/null & S=$!
    timeout 200 sh $RT /tmp/art/$m-$v --synthetic-weights 42 --time 20 --json > /tmp/s.json 2>> $L; rc=$?
    kill $S; echo "step $m-$v round $round rc $rc $(date -u +%T)" >> $L
    python3 - /tmp/s.json $m-$v /tmp/smi.csv <<'PY' | tee -a $L
import json,sys,statistics as st
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); t=j['timing']
rows=[tuple(float(x) for x in l.split(',')) for l in open(sys.argv[3]) if l.strip() and 'N/A' not in l]
hot=[r for r in rows if r[1] > 400]
clk=st.median(r[0] for r in hot) if hot else 0; pw=st.median(r[1] for r in hot) if hot else 0
e=t['graph'].get('energy'); ej=f" | {e['joulesPerRun']:.2f} J a run (NVML counter, {e['meanWatts']:.0f} W mean)" if e else ''
print(sys.argv[2], 'graph median', round(t['graph']['medianMs'],2), 'min', round(t['graph']['minMs'],2), f'| SM MHz {clk:.0f} W {pw:.0f} ({len(hot)} samples > 400 W)' + ej)
PY
  done; done
  if [ "${PROFILE:-0}" = 1 ]; then
    set -- $VARIANTS
    timeout 200 sh $RT /tmp/art/$m-$1 --synthetic-weights 42 --time 5 --profile --json > /tmp/p.json 2>> $L; echo "profile $m-$1 rc $?" | tee -a $L
    tail -1 /tmp/p.json > $OUT/profile-$m.json
  fi
done
grep -E " vs |graph median|rc [1-9]|rror" $L | cut -c1-300
