#!/bin/sh
# Session 9 call D2: Qwen-Image pipeline of c22876a (attention with a partial last key tile in the ping-pong):
#  1. correctness: transformer_t32 over transformer's synthetic weights, 27 real text tokens, against
#     transformer (256 tokens) with the same 27 tokens padded with garbage and masked;
#  2. the batch-2 CFG step at 256 / 128 / 64 / 32 text tokens, two rounds (256 and 128 unchanged: baselines);
#  3. npx bench --e2e qwen_image (no diffusers in this call).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/art && tar -xJf .gpu/D2/qwen.tar.xz -C /tmp/art
RT=.gpu/D2/rt/run.sh
A=/tmp/art/qwen-image
python3 - <<'PY' | tee -a $L
import numpy as np, os
r = np.random.default_rng(9)
h = r.standard_normal((1, 4096, 64)).astype(np.float32)
t = r.standard_normal((1, 256, 3584)).astype(np.float32)
t[:, 27:] = 30 * r.standard_normal((1, 229, 3584))  # garbage past the prompt
m = np.zeros((1, 256), np.int64); m[:, :27] = 1
ts = np.array([0.6], np.float32)
for d, n in (('/tmp/in256', 256), ('/tmp/in32', 32)):
    os.makedirs(d, exist_ok=True)
    np.save(f'{d}/input_hidden_states.npy', h); np.save(f'{d}/input_encoder_hidden_states.npy', t[:, :n].copy())
    np.save(f'{d}/input_encoder_hidden_states_mask.npy', m[:, :n].copy()); np.save(f'{d}/input_timestep.npy', ts)
print('inputs written')
PY
timeout 150 sh $RT $A/transformer --synthetic-weights 42 --inputs /tmp/in256 --out /tmp/o256 >> $L 2>&1; echo "t256 rc $?" | tee -a $L
mkdir -p /tmp/ref && for f in /tmp/o256/output_*; do b=$(basename $f | sed 's/.synthetic//'); cp $f /tmp/ref/$b; done
timeout 150 sh $RT $A/transformer_t32 --weights-from $A/transformer --synthetic-weights 42 --inputs /tmp/in32 --reference /tmp/ref --json > /tmp/t32.json 2>> $L; echo "t32 vs 256 rc $?" | tee -a $L
tail -c 500 /tmp/t32.json | tee -a $L; echo | tee -a $L
for round in 1 2; do
for m in transformer_cfg transformer_t128_cfg transformer_t64_cfg transformer_t32_cfg; do
  timeout 150 sh $RT $A/$m --weights-from $A/transformer --synthetic-weights 42 --time 20 $( [ $round = 2 ] && echo --profile ) --json > /tmp/s.json 2>> $L; echo "step $m round $round rc $? $(date -u +%T)" | tee -a $L
  [ $round = 2 ] && cp /tmp/s.json $OUT/step-$m.json
  python3 - /tmp/s.json $m <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p=j.get('profile',{}).get('byKind',{})
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), ' '.join(f"{k} {v['ms']:.1f}" for k,v in p.items()))
PY
done
done
mkdir -p /tmp/e2e
timeout 200 sh $RT bench --e2e --models qwen_image --artifact qwen_image=$A --iters 3 --no-baseline --out /tmp/e2e >> $L 2>&1
echo "e2e rc $? at $(date -u +%T)" | tee -a $L
cp /tmp/e2e/bench-e2e.json $OUT/e2e-qwen_image.json; cp /tmp/e2e/bench-e2e.md $OUT/e2e-qwen_image.md
grep -E "graph median|relL2|rel\. L2|cosine|compiled end to end|rc [1-9]|rror|identical|DIFFERENT" $L | cut -c1-300
