#!/bin/sh
# Session 10 call E1: the own FP8 GEMM with its scales and bias in the epilogue (gemmScales "auto", commit in header of RESULTS).
#  1. tiny Flux.2 / Qwen-Image fp8 compiled here by the bundled compiler: default, own (auto: scaled epilogue), own with readers; against PyTorch;
#  2. full-size Flux.2 transformer (4096 + 512) and Qwen-Image batch-2 32-token transformer, three builds on the same synthetic
#     weights and seeded inputs: cuBLASLt (default), own + readers (session 9's), own + auto; outputs against the cuBLASLt build;
#  3. step time, the three builds alternating, two rounds (profile in the second);
#  4. the GEMM bench: plain ping-pong (q192s4) and scaled + bias (q192s4b) against cuBLASLt, 13 shapes.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=.gpu/E1
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
RT=$D/rt/run.sh
mkdir -p /tmp/t /tmp/art && tar -xJf $D/full.tar.xz -C /tmp/art
echo '{"gemm":"own"}' > /tmp/t/own.json; echo '{"gemm":"own","gemmScales":"readers"}' > /tmp/t/ownr.json
for m in flux2 qwen_image; do for pol in default own ownr; do
  extra=""; [ $pol != default ] && extra="--policy /tmp/t/$pol.json"
  timeout 120 sh $RT compile models/tiny/$m --precision fp8 $extra --out /tmp/t/$m-$pol > /dev/null 2>> $L || echo "compile $m $pol failed" | tee -a $L
  timeout 60 sh $RT /tmp/t/$m-$pol --inputs models/tiny/$m --reference models/tiny/$m --min-cosine 0.995 --json > /tmp/t/r.json 2>> $L; echo "tiny $m $pol rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/t/r.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('tiny $m $pol', {k:o.get(k) for k in ('relL2','cosine','passed')})" | tee -a $L
done; done
for m in flux qwen; do
  timeout 150 sh $RT /tmp/art/$m-cub --synthetic-weights 42 --out /tmp/o-$m > /dev/null 2>> $L; echo "$m cuBLASLt outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$m && for f in /tmp/o-$m/output_*; do cp $f /tmp/ref-$m/$(basename $f | sed 's/.synthetic//'); done
  for v in ownr own; do
    timeout 150 sh $RT /tmp/art/$m-$v --synthetic-weights 42 --reference /tmp/ref-$m --json > /tmp/c.json 2>> $L; echo "$m $v vs cuBLASLt rc $?" | tee -a $L
    python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$m $v vs cuBLASLt', {k:o.get(k) for k in ('relL2','cosine','finite')})" | tee -a $L
  done
done
for round in 1 2; do for m in flux qwen; do for v in cub ownr own; do
  timeout 150 sh $RT /tmp/art/$m-$v --synthetic-weights 42 --time 20 $( [ $round = 2 ] && echo --profile ) --json > /tmp/s.json 2>> $L; echo "step $m-$v round $round rc $? $(date -u +%T)" | tee -a $L
  [ $round = 2 ] && cp /tmp/s.json $OUT/step-$m-$v.json
  python3 - /tmp/s.json $m-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), ' '.join(f"{k} {v['ms']:.1f}" for k,v in p.items()))
PY
done; done; done
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 200 /tmp/go $D/gemm > $OUT/gemm.txt 2>&1; echo "gemm harness exit $?" | tee -a $L
grep -E "tiny |vs cuBLASLt|graph median|rc [1-9]|failed|rror" $L | cut -c1-300
cat $OUT/gemm.txt | cut -c1-220
