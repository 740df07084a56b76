#!/bin/sh
# Session 27 call W1 (experiment; code bench/gpu/calls/session27-gauss-weights.patch, reverted): how much the synthetic weights'
# distribution moves the power-capped steps. The same artifacts (compiled with the patched support unit) drawn two ways:
# today's uniform draws (fp8 codes uniform over +-448) and normal ones (DC_SYNTH_GAUSS=1: codes N(0, (448/4.5)^2), the spread a
# per-channel amax of about 4.5 sigma gives real weights; bf16 matrices N(0, 1/K)), alternating, CUDA-graph median of 20, with the
# NVML energy a run. Artifacts: $D/art.tar.xz (/tmp/artg/{flux,qwen}-g).
set -u
D=${D:-.gpu/W27} ROUNDS=${ROUNDS:-2}
export DC_GEMM_TUNING=/tmp/gemm-tuning.json
nvidia-smi --query-gpu=name,serial,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
tar -xJf $D/art.tar.xz -C /tmp
for m in flux qwen; do for r in $(seq 1 $ROUNDS); do for g in 0 1; do
  if [ $g = 1 ]; then export DC_SYNTH_GAUSS=1; else unset DC_SYNTH_GAUSS; fi
  timeout 150 sh .gpu/rt/run.sh /tmp/artg/$m-g --synthetic-weights 42 --time 20 --json > /tmp/s.json 2>> $OUT/log.txt; rc=$?
  python3 - /tmp/s.json "$m gauss=$g round $r rc $rc" <<'PY' | tee -a $OUT/steps.txt
import json,sys
try:
  j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); t=j['timing']['graph']; e=t.get('energy') or {}
  o=list(j['outputs'].values())[0] if j.get('outputs') else {}
  print(sys.argv[2], 'median', round(t['medianMs'],2), 'min', round(t['minMs'],2), 'J', e.get('joulesPerRun'), 'W', round(e.get('meanWatts',0)), 'MHz', e.get('smClockMHz'), 'meanAbs', o.get('meanAbs'))
except Exception as x: print(sys.argv[2], 'failed', x)
PY
done; done; done
