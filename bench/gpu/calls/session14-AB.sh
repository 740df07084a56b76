#!/bin/sh
# Session 14 model A/B calls (`D=.gpu/Q1 REF=flux-old A=flux-kern B=flux-new sh THIS`): artifacts compiled here
# (npx compile ... --out $D/art/NAME, tarred as $D/art.tar.xz) and the runtime of `npx tsx runtime/gpu/pack.ts`
# (.gpu/rt), carried.
#  1. outputs: REF's on synthetic weights 42 and seeded inputs; A against it; B run once with --trace (60 s: a hang
#     names its launch and ends the call); B against REF, and against A (rel. L2, cosine);
#  2. step time, A and B alternating, ROUNDS rounds (CUDA-graph median of 20, launch by launch beside it); the
#     last round with --profile (each launch timed alone, summed by kind).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:?} A=${A:?} B=${B:?} REF=${REF:-$A} ROUNDS=${ROUNDS:-2}
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=.gpu/rt/run.sh
tar -xJf $D/art.tar.xz -C /tmp
outputs() {  # outputs of artifact $1 into /tmp/ref-$1 (names without the synthetic tag)
  timeout 200 sh $RT /tmp/art/$1 --synthetic-weights 42 --out /tmp/o-$1 > /dev/null 2>> $L; echo "$1 outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$1 && for f in /tmp/o-$1/output_*; do cp $f /tmp/ref-$1/$(basename $f | sed 's/.synthetic//'); done
}
compare() {  # artifact $1 against the outputs of $2
  timeout 200 sh $RT /tmp/art/$1 --synthetic-weights 42 --reference /tmp/ref-$2 --json > /tmp/c.json 2>> $L; echo "$1 vs $2 rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$1 vs $2', {k:o.get(k) for k in ('relL2','cosine','finite','maxAbs')})" | tee -a $L
}
outputs $REF
[ $A != $REF ] && compare $A $REF
(timeout 60 sh $RT /tmp/art/$B --synthetic-weights 42 --trace --no-gemm-tuning > /dev/null 2> /tmp/trace-$B.txt; echo "$B trace rc $?" | tee -a $L); grep "^launch" /tmp/trace-$B.txt | tail -1 | tee -a $L
grep -q "$B trace rc 0" $L || exit 1
compare $B $REF
[ $A != $REF ] && { outputs $A; compare $B $A; }
for round in $(seq 1 $ROUNDS); do for v in $A $B; do
  P=$( [ $round = $ROUNDS ] && echo --profile )
  timeout 200 sh $RT /tmp/art/$v --synthetic-weights 42 --time 20 $P --json > /tmp/s.json 2>> $L; echo "step $v round $round rc $? $(date -u +%T)" | tee -a $L
  [ -n "$P" ] && cp /tmp/s.json $OUT/step-$v.json
  python3 - /tmp/s.json $v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
t=j['timing']; p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(t['graph']['medianMs'],2), 'min', round(t['graph']['minMs'],2), 'eager median', round(t['eager']['medianMs'],2), ' '.join(f"{k} {v['ms']:.2f}" for k,v in p.items()))
PY
done; done
grep -E " vs |graph median|rc [1-9]|rror" $L | cut -c1-400
