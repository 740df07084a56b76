#!/bin/sh
# Session 14 calls Q9 and R2 (`D=.gpu/Q9 sh THIS`; `D=.gpu/R2 V="..." sh THIS`): where the pack epilogue's time
# goes (the pack-epilogue GEMM of 9370c6e, since reverted). Timing only (outputs of the diagnostic builds are
# not the model's), each artifact with --profile; the QKV GEMM's launches printed (linear_9: a double block's
# image stream; linear_199: the last single block, pack part then the rest). Q9: flux-kern (pack kernel),
# flux-new (pack epilogue), flux-w1 (the 128-wide tiles and the column split with the plain epilogue) and
# flux-w8 (the RoPE tables' loads replaced by cos 1, sin 0). R2, built from 9370c6e's template with parts
# removed: flux-full (as is), flux-norope (w8), flux-xc (no RMSNorm/RoPE), flux-xd (no e4m3 codes staged or
# stored), flux-xe (V tiles do nothing), flux-xf (only the scaled, bf16-rounded values).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=${D:-.gpu/Q9}
tar -xJf $D/art.tar.xz -C /tmp
for v in ${V:-flux-kern flux-new flux-w1 flux-w8 flux-kern flux-new}; do
  timeout 100 sh .gpu/rt/run.sh /tmp/art/$v --synthetic-weights 42 --time 20 --profile --json > /tmp/s.json 2>/dev/null; echo "$v rc $?"
  python3 - /tmp/s.json $v <<'PY'
import json,sys,collections
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
t=j['timing']; p=j['profile']
L=p['launches']; q=[l for l in L if l['label']=='gemm8' and l['node'].startswith('linear_9/')]; s=[l for l in L if l['label']=='gemm8' and l['node']=='linear_199']
print(sys.argv[2], 'graph median', round(t['graph']['medianMs'],2), ' '.join(f"{k} {v['ms']:.2f}" for k,v in p['byKind'].items()), '| linear_9', [round(l['ms']*1000,1) for l in q], 'linear_199', [round(l['ms']*1000,1) for l in s])
PY
done
