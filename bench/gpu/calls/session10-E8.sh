#!/bin/sh
# Session 10 call E8: the Flux.2 [dev] step with the final defaults of this session (own GEMM with its scales in its
# epilogue for GEMMs of >= 264 output tiles; the 512 x 6144 text projections on cuBLASLt) against the cuBLASLt build
# (policy {"gemm": "cublaslt"}), both compiled at the same commit; outputs compared; steps alternating, three rounds.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=.gpu/E8
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=$D/rt/run.sh
mkdir -p /tmp/art && tar -xJf $D/full.tar.xz -C /tmp/art
timeout 150 sh $RT /tmp/art/flux-cub2 --synthetic-weights 42 --out /tmp/o > /dev/null 2>> $L; echo "cuBLASLt outputs rc $?" | tee -a $L
mkdir -p /tmp/ref && for f in /tmp/o/output_*; do cp $f /tmp/ref/$(basename $f | sed 's/.synthetic//'); done
timeout 150 sh $RT /tmp/art/flux-def --synthetic-weights 42 --reference /tmp/ref --json > /tmp/c.json 2>> $L; echo "default vs cuBLASLt rc $?" | tee -a $L
python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('default vs cuBLASLt', {k:o.get(k) for k in ('relL2','cosine','finite')})" | tee -a $L
for round in 1 2 3; do for v in cub2 def; do
  timeout 150 sh $RT /tmp/art/flux-$v --synthetic-weights 42 --time 20 $( [ $round = 3 ] && echo --profile ) --json > /tmp/s.json 2>> $L; echo "step flux-$v round $round rc $? $(date -u +%T)" | tee -a $L
  [ $round = 3 ] && cp /tmp/s.json $OUT/step-flux-$v.json
  python3 - /tmp/s.json flux-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), ' '.join(f"{k} {v['ms']:.1f}" for k,v in p.items()))
PY
done; done
grep -E "vs cuBLASLt|graph median|rc [1-9]|rror" $L | cut -c1-300
