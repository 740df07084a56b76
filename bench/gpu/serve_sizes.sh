#!/bin/sh
# Serves a pipeline artifact compiled for several sizes on the GPU host and checks it over HTTP: `run.sh serve` with synthetic
# weights 42, --storage and --max-queued 1 (the smoke's url and 429 checks); two timed requests at the first size (the PNG's
# size checked), one at the second, the first again (the same PNG bytes as before: the sizes' modules share one activation
# memory), the device memory in use; then test/gpu/serve_smoke.py at the second size (PNG / WebP / JPEG, same bytes for the
# same seed, n = 2, url, a queue of 1, bad requests, SIGTERM and the exit status).
# Usage (in a device call, from the repository root): sh bench/gpu/serve_sizes.sh ARTIFACT_DIR FAMILY FIRST_SIZE SECOND_SIZE
# FAMILY is flux2 or qwen_image (serve_smoke's request shape); writes gpu.txt, first-size.txt, smoke.json, serve.log to $OUT.
set -u
ART=$1 FAMILY=$2 FIRST=$3 SECOND=$4 RT=.gpu/rt/run.sh
mkdir -p /tmp/store
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
sh $RT serve "$ART" --synthetic-weights 42 --port 8123 --storage /tmp/store --max-queued 1 > $OUT/serve.log 2>&1 &
SPID=$!
FIRST=$FIRST SECOND=$SECOND python3 - <<'PY' | tee $OUT/first-size.txt
import base64, json, os, struct, subprocess, time, urllib.request
base, size = "http://127.0.0.1:8123", os.environ["FIRST"]
t0 = time.time()
while time.time() - t0 < 400:
    try:
        if urllib.request.urlopen(base + "/health/ready", timeout=2).status == 200: break
    except Exception: time.sleep(2)
print(f"ready after {time.time() - t0:.0f} s")
def generate(size, label):
    body = json.dumps({"prompt": "a red fox in fresh snow, morning light", "size": size, "seed": 42, "num_inference_steps": 8}).encode()
    t = time.time()
    r = json.load(urllib.request.urlopen(urllib.request.Request(base + "/v1/images/generations", body, {"content-type": "application/json"}), timeout=120))
    png = base64.b64decode(r["data"][0]["b64_json"])
    w, h = struct.unpack(">II", png[16:24])
    print(f"{size} {label}: {1000 * (time.time() - t):.0f} ms, PNG {w}x{h}, {len(png)} bytes, timings {r.get('timings')}")
    return png
first = generate(size, "request 1")
generate(size, "request 2")
generate(os.environ["SECOND"], "request")
again = generate(size, "request 3 (after the other size)")
print(f"same PNG bytes at {size} before and after the other size: {again == first}")
used = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
print(f"device memory in use while serving: {used}")
PY
SIZE=$SECOND timeout 400 python3 test/gpu/serve_smoke.py 8123 $SPID $FAMILY $OUT/smoke.json; echo "smoke rc $?"
wait $SPID; echo "serve exit $?"
grep -E '"msg":"(a GPU|pipeline loaded|listening|drained|warm)' $OUT/serve.log | cut -c1-400
