#!/bin/sh
# Session 19 calls M1, M2, M3: the step memo (compiler/memo.ts, runtime/gpu/memo.ts), issue 7. M2: run-cli's memo timing
# alternating with the full step (M1 timed it after the graph and eager timings), and the end-to-end run with the memo
# off (DC_STEP_MEMO_MB=0) and on, alternating, ROUNDS rounds. M3 (after the review's fixes: the arena poisoned before each
# restoring step, in-place chains' writers kept, reads from every launch argument): STEP_ROUNDS=2 ROUNDS=1 BENCH=1, and
# `npx bench --models qwen_image,flux2_dev --no-baseline` (its step-memo row).
#  1. Flux.2 and Qwen-Image (CFG batch 2, 32 tokens) compiled at this tree into .gpu/M1/art (art.tar.xz), synthetic
#     weights 42: `run.sh ART --time 20 --json` three rounds each: the CUDA-graph step and, in the same process, the
#     step with the memoized launches restored (run-cli's `memo`: outputs compared with the full step's bytes);
#  2. Qwen-Image end to end (`npx bench --e2e`, 4 requests: the first computes every step's memo entry, the others
#     restore them), the pipeline of session 16's T5 compiled at this tree (.gpu/M1/pipe.tar.xz).
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee -a $L
tar -xJf .gpu/M1/art.tar.xz -C /tmp
for round in $(seq ${STEP_ROUNDS:-3}); do for m in ${MODELS:-flux qwen}; do
  timeout 200 sh .gpu/rt/run.sh /tmp/art/$m --synthetic-weights 42 --time 20 --json > /tmp/s.json 2>> $L; echo "step $m round $round rc $?" >> $L
  python3 - /tmp/s.json $m <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); t=j['timing']; g=t['graph']; mm=t.get('memo')
e=lambda x: f" {x['energy']['joulesPerRun']:.2f} J" if x and x.get('energy') else ''
f=mm and mm.get('full')
print(sys.argv[2], 'graph median', round(g['medianMs'],2), 'min', round(g['minMs'],2), e(g), '| memo median', mm and round(mm['medianMs'],2), 'min', mm and round(mm['minMs'],2), '| full alternating median', f and round(f['medianMs'],2), 'min', f and round(f['minMs'],2), 'skipped', mm and mm['launchesSkipped'], 'identical', mm and mm['identical'])
PY
done; done
if [ "${E2E:-1}" = 1 ]; then
  mkdir -p /tmp/art2 && tar -xJf .gpu/M1/pipe.tar.xz -C /tmp/art2
  for round in $(seq ${ROUNDS:-2}); do for mb in 0 512; do
    rm -rf /tmp/e2e && mkdir -p /tmp/e2e
    DC_STEP_MEMO_MB=$mb timeout 200 sh .gpu/rt/run.sh bench --e2e --models qwen_image --artifact qwen_image=/tmp/art2/qwen-image --iters 3 --no-baseline --out /tmp/e2e > /tmp/e2e.log 2>&1
    echo "e2e memo ${mb} MiB round $round rc $? at $(date -u +%T)" | tee -a $L
    grep -E "identical PNG" /tmp/e2e.log | tee -a $L
    grep -E "^\| (text encode|denoise|VAE decode|image encode|\*\*total|GPU board energy)" /tmp/e2e/bench-e2e.md | sed "s/^/memo $mb: /" | tee -a $L
    cp /tmp/e2e/bench-e2e.md $OUT/bench-e2e-memo$mb-r$round.md
  done; done
fi
if [ "${BENCH:-0}" = 1 ]; then
  rm -rf /tmp/bench && mkdir -p /tmp/bench
  timeout 300 sh .gpu/rt/run.sh bench --models qwen_image,flux2_dev --artifact qwen_image=/tmp/art/qwen --artifact flux2_dev=/tmp/art/flux --no-baseline --iters 10 --out /tmp/bench >> $L 2>&1
  echo "bench rc $? at $(date -u +%T)" | tee -a $L
  cp /tmp/bench/*.md $OUT/ 2>/dev/null; grep -E "^\|" /tmp/bench/*.md | head -20 | tee -a $L
fi
grep -E "graph median|rc [1-9]|rror|memo [0-9]|e2e|bench" $L | cut -c1-300 | tail -40
