#!/bin/sh
# Session 32 call S1: `npx serve` on the GPU for the first time — the whole Flux.2 [dev] and Qwen-Image pipelines (compiled
# at this tree: .gpu/E32/pipe-*.tar.xz, as calls E1 / E2) served with synthetic weights 42 by the bundled server
# (`run.sh serve`, runtime/gpu/pack.ts), asked from outside by test/gpu/serve_smoke.py: PNG / WebP / JPEG at 1024x1024,
# the same bytes for the same seed, Qwen-Image's negative prompt with true CFG, bad requests (400 naming the field, 405),
# /v1/models, /metrics, then SIGTERM and the exit status. Call S2: the same with SERVE_FLAGS='--max-queued 1 --storage
# /tmp/store' and the smoke client's n = 2, response_format url and three-at-once checks (S1 ran without them): three at
# once were all served, and each response waited for the next generation, since the device loop's cuEventSynchronize
# held Node's event loop. Call S3: the same as S2 after the loop's waits became event queries that yield to it. Call S4:
# the same as S3 with the smoke client's disconnect check (a client gone a quarter second into an n = 4 generation).
# Call S5: the same as S4 after the text encoder's and the VAE's waits (start/finish, rgb8) became stream queries too.
set -u
D=${D:-.gpu/E32}
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art && tar -xJf $D/pipe-flux2.tar.xz -C /tmp/art && tar -xJf $D/pipe-qwen_image.tar.xz -C /tmp/art
for fam in flux2 qwen_image; do
  case $fam in flux2) A=/tmp/art/flux2-dev ;; *) A=/tmp/art/qwen-image ;; esac
  mkdir -p /tmp/store; sh .gpu/rt/run.sh serve $A --synthetic-weights 42 --port 8123 ${SERVE_FLAGS:-} > $OUT/serve-$fam.log 2>&1 &
  SPID=$!
  timeout 500 python3 test/gpu/serve_smoke.py 8123 $SPID $fam $OUT/smoke-$fam.json; echo "smoke $fam rc $?"
  wait $SPID; echo "serve $fam exit $?"
  grep -E '"msg":"(a GPU|pipeline loaded|listening|drained|warm)' $OUT/serve-$fam.log | cut -c1-400
done
