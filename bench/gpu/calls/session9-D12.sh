#!/bin/sh
# Session 9 call D12: Qwen-Image against diffusers' bf16 model holding the same weights, one step, 27 text
# tokens kept: the 256-token module and the 64- and 32-token ones (ping-pong attention with a partial last
# key tile since c22876a), each over transformer/'s synthetic weights (pipeline of a17fa38).
set -u
export PYTHONUNBUFFERED=1
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total,power.limit --format=csv,noheader | tee -a $L
mkdir -p /tmp/art /tmp/dif && tar -xJf .gpu/D12/qwen.tar.xz -C /tmp/art && tar -xJf .gpu/D12/diffusers-slim.tar.xz -C /tmp/dif
RT=.gpu/D12/rt/run.sh
xz -dc .gpu/D12/fills256.json.xz > /tmp/fills256.json
export PYTHONPATH=/tmp/dif/src
W=/tmp/dw; mkdir -p $W
python3 bench/gpu/same_weights.py inputs qwen_image --out $W/q --text-valid 27 >> $L 2>&1; echo "inputs rc $?" | tee -a $L
python3 - <<'PY' | tee -a $L
import numpy as np, os, shutil
for n_ in (32, 64):
    d = f'/tmp/dw/q{n_}'; os.makedirs(d, exist_ok=True)
    for n in ('hidden_states', 'timestep'): shutil.copy(f'/tmp/dw/q/input_{n}.npy', f'{d}/input_{n}.npy')
    for n in ('encoder_hidden_states', 'encoder_hidden_states_mask'):
        x = np.load(f'/tmp/dw/q/input_{n}.npy'); np.save(f'{d}/input_{n}.npy', x[:, :n_].copy())
print('kept', int(np.load('/tmp/dw/q/input_encoder_hidden_states_mask.npy').sum()), 'text tokens')
PY
timeout 150 sh $RT /tmp/art/qwen-image/transformer --synthetic-weights 42 --inputs $W/q --out $W/o256 >> $L 2>&1; echo "compiled 256 rc $?" | tee -a $L
for n in 64 32; do
  timeout 150 sh $RT /tmp/art/qwen-image/transformer_t$n --weights-from /tmp/art/qwen-image/transformer --synthetic-weights 42 --inputs $W/q$n --out $W/o$n >> $L 2>&1; echo "compiled t$n rc $?" | tee -a $L
done
for o in o256 o64 o32; do
  timeout 200 python3 bench/gpu/same_weights.py compare qwen_image --fills /tmp/fills256.json --inputs $W/q --compiled $W/$o/output_sample.synthetic.npy --out $OUT/same-$o.json 2>&1 | tail -1 | cut -c1-300 | sed "s/^/same weights $o: /" | tee -a $L
done
grep -E "same weights|rc [1-9]|rror" $L | cut -c1-300
