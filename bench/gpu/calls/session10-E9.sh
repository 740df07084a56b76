#!/bin/sh
# Session 10 call E9: why E8's step medians showed no gain where E1/E2 showed 6-7 ms: the Flux.2 step of three builds
# alternating, three rounds: flux-own (E1/E2's build, 4e8321c + c168bf5: every GEMM own), flux-def (E8's: the 512 x 6144
# text projections back on cuBLASLt, ownGemmMinTiles), flux-cub2 (cuBLASLt); the card's clock and power sampled meanwhile.
set -u
export PYTHONUNBUFFERED=1 DC_GEMM_TUNING=/tmp/gemm-tuning.json
D=.gpu/E9
L=$OUT/log.txt
date -u | tee $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,serial --format=csv,noheader | tee -a $L
RT=$D/rt/run.sh
mkdir -p /tmp/art && tar -xJf $D/full.tar.xz -C /tmp/art
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader -lms 200 > $OUT/clocks.csv &
SMI=$!
for round in 1 2 3; do for v in cub2 own def; do
  timeout 150 sh $RT /tmp/art/flux-$v --synthetic-weights 42 --time 20 --json > /tmp/s.json 2>> $L; echo "step flux-$v round $round rc $? $(date -u +%T)" | tee -a $L
  python3 - /tmp/s.json flux-$v <<'PY' | tee -a $L
import json,sys
j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(sys.argv[2], 'graph median', round(j['timing']['graph']['medianMs'],2), 'min', round(j['timing']['graph']['minMs'],2), 'launch-by-launch median', round(j['timing']['eager']['medianMs'],2))
PY
done; done
kill $SMI
grep -E "graph median|rc [1-9]|rror" $L | cut -c1-300
