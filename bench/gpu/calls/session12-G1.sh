#!/bin/sh
# Session 12 calls G1 and G2 (`D=.gpu/G2 sh THIS`): the twin row kernels of the image and text streams as one segmented launch
# (passes/fuse-horizontal.ts, compiler/codegen/render.ts renderSegmented).
#  1. The element-wise harness on `npx tsx test/gpu/cases.ts prepare .gpu/G1/cases row-kernels` (carried: cases.txt,
#     kernels.cubin as .xz, to fit the 64 MiB carry; checked here with `cases.ts check .gpu/seg OUT/cases`): every segmented kernel of the tiny models
#     and of flux2_dev at 64 + 64 tokens against the reference (also on 4 CTAs, many rows a CTA); at 4096 + 512 tokens
#     each segmented kernel timed beside its segments launched alone (the baseline, same run), and the 1 GiB copy.
#  2. The models, artifacts compiled here at bb87678 (old) and at this change (new), Qwen-Image `--batch 2
#     --text-length 32` and Flux.2 `--size 1024x1024 --shape txt_tokens=512`: new against old on the same synthetic
#     weights (42), then step times old/new alternating, two rounds (CUDA-graph median of 20; round 2 profiled).
# G1 ran an earlier form of 7c75bd2 (the grid split by elements, every pair merged); G2 ran 7c75bd2, which splits for the fewest rows
# a CTA and launches apart the pairs whose segments differ in dequantization.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:-.gpu/G1}
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error" | tee -a $L
mkdir -p /tmp/cases /tmp/oc && cp $D/cases/cases.txt /tmp/cases/ && xz -dc $D/cases/kernels.cubin.xz > /tmp/cases/kernels.cubin
timeout 240 /tmp/h /tmp/cases /tmp/oc > /tmp/oc/log.txt 2>&1; echo "harness exit $?" | tee -a $L
(cd /tmp/oc && split -b 15M outputs.bin $OUT/outputs.part.) ; cp /tmp/oc/log.txt $OUT/cases-log.txt
RT=$D/rt/run.sh
mkdir -p /tmp/art && tar -xJf $D/art.tar.xz -C /tmp/art
for m in qwen flux; do
  timeout 200 sh $RT /tmp/art/art/$m-old --synthetic-weights 42 --out /tmp/o-$m > /dev/null 2>> $L; echo "$m old outputs rc $?" | tee -a $L
  mkdir -p /tmp/ref-$m && for f in /tmp/o-$m/output_*; do cp $f /tmp/ref-$m/$(basename $f | sed 's/.synthetic//'); done
  timeout 200 sh $RT /tmp/art/art/$m-new --synthetic-weights 42 --reference /tmp/ref-$m --json > /tmp/c.json 2>> $L; echo "$m new vs old rc $?" | tee -a $L
  python3 -c "
import json; j=json.loads(open('/tmp/c.json').read().strip().splitlines()[-1]); o=list(j['outputs'].values())[0]
print('$m new vs old', {k:o.get(k) for k in ('relL2','cosine','finite','maxAbs')})" | tee -a $L
done
mkdir -p /tmp/steps
for round in 1 2; do for m in qwen flux; do for v in old new; do
  timeout 200 sh $RT /tmp/art/art/$m-$v --synthetic-weights 42 --time 20 $( [ $round = 2 ] && echo --profile ) --json > /tmp/s.json 2>> $L; echo "step $m-$v round $round rc $? $(date -u +%T)" | tee -a $L
  [ $round = 2 ] && cp /tmp/s.json /tmp/steps/step-$m-$v.json
  python3 - /tmp/s.json $m-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), ' '.join(f"{k} {v['ms']:.1f}" for k,v in p.items()))
PY
done; done; done
tar -cJf $OUT/steps.tar.xz -C /tmp steps
grep -E "new vs old|graph median|rc [1-9]|failed|rror|exit" $L | cut -c1-300
tail -3 /tmp/oc/log.txt
