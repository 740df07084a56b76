#!/bin/sh
# Session 25 call M1: Flux.2's position ids as step-memo key inputs (compiler/memo.ts isPositionIds: the RoPE tables'
# launches memoized with the timestep's). .gpu/M25/art.tar.xz: art/flux-new (b359feb: 21 memoized launches) and
# art/flux-ids (this tree: 87), synthetic weights 42; `run-cli --time 20` alternating, two rounds each: the CUDA-graph
# step, the memo's restoring step alternating with the full one, and whether the restoring step's outputs equal the
# full step's bytes. The change was reverted after this call (code at 9f23bca).
set -u
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
tar -xJf .gpu/M25/art.tar.xz -C /tmp
for round in 1 2; do for v in new ids; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/flux-$v --synthetic-weights 42 --time 20 --json > /tmp/t.json 2>> $OUT/log.txt; echo "flux-$v round $round rc $?"
  tail -1 /tmp/t.json > $OUT/time-flux-$v-$round.json
  python3 -c "
import json; t=json.loads(open('/tmp/t.json').read().strip().splitlines()[-1])['timing']
m=t.get('memo') or {}
print('flux-$v round $round graph', round(t['graph']['medianMs'],2), '| memo', round(m.get('medianMs',0),2), 'full alternating', round(m.get('full',{}).get('medianMs',0),2), 'skipped', m.get('launchesSkipped'), 'identical', m.get('identical'))"
done; done
