#!/bin/sh
# Session 33 call D1: does the same seed give the same image across fresh loads, now that GEMM tuning counts timings
# within 3% of the fastest as ties broken by the heuristic's order (runtime/gpu/cublaslt.ts TUNE_TOLERANCE, session 32)?
# Each family's whole pipeline (.gpu/E32, compiled at session 32's tree; synthetic weights 42) is served three times,
# each load tuning from scratch (its own empty $DC_GEMM_TUNING file), and asked the same requests: seed 7 as PNG, and for
# Qwen-Image seed 7 with a negative prompt (true CFG: the batch-2 module's GEMM shapes). Prints each load's tuning line
# and each response's PNG sha256; the loads agree or they do not.
set -u
D=${D:-.gpu/E32}
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
mkdir -p /tmp/art && tar -xJf $D/pipe-flux2.tar.xz -C /tmp/art && tar -xJf $D/pipe-qwen_image.tar.xz -C /tmp/art
cat > /tmp/ask.py <<'PY'
import base64, hashlib, json, sys, time, urllib.request
port, fam = sys.argv[1], sys.argv[2]
base = f'http://127.0.0.1:{port}'
t0 = time.time()
while True:
    try:
        if urllib.request.urlopen(base + '/health/ready', timeout=5).status == 200: break
    except Exception: pass
    if time.time() - t0 > 200: print('not ready'); sys.exit(1)
    time.sleep(1)
asks = [{'prompt': 'a red fox in the snow', 'seed': 7}]
if fam == 'qwen_image': asks.append({'prompt': 'a red fox in the snow', 'seed': 7, 'negative_prompt': 'blurry', 'guidance_scale': 4.0})
for a in asks:
    req = urllib.request.Request(base + '/v1/images/generations', data=json.dumps({**a, 'size': '1024x1024'}).encode(), headers={'content-type': 'application/json'})
    t = time.time(); body = json.loads(urllib.request.urlopen(req, timeout=300).read())
    png = base64.b64decode(body['data'][0]['b64_json'])
    print(fam, 'cfg' if 'negative_prompt' in a else 'plain', len(png), hashlib.sha256(png).hexdigest()[:16], f'{time.time() - t:.2f}s')
PY
for fam in qwen_image flux2; do
  case $fam in flux2) A=/tmp/art/flux2-dev ;; *) A=/tmp/art/qwen-image ;; esac
  for i in 1 2 3; do
    DC_GEMM_TUNING=/tmp/tune-$fam-$i.json sh .gpu/rt/run.sh serve $A --synthetic-weights 42 --port 8123 > $OUT/serve-$fam-$i.log 2>&1 &
    SPID=$!
    timeout 300 python3 /tmp/ask.py 8123 $fam; echo "ask $fam load $i rc $?"
    kill -TERM $SPID; wait $SPID; echo "serve $fam load $i exit $?"
    grep -o 'GEMM tuning: [^"]*' $OUT/serve-$fam-$i.log | head -8
  done
done
for f in /tmp/tune-*.json; do echo "== $f"; head -c 3000 $f; echo; done > $OUT/tuning.txt
