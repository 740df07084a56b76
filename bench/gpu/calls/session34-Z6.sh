#!/bin/sh
# Session 34 call Z6: Qwen-Image's whole pipeline with two sizes served over HTTP on the GPU. models/qwen_image/full.pipeline.json
# (structure only) compiled on the CPU machine for 1024x1024 and 1024x768 (.gpu/Z6/qwen-image.tar.xz: per size the transformer,
# its batch-2 module and three text lengths with theirs, and the VAE decoder), served with synthetic weights 42, --storage and
# --max-queued 1 (the smoke's url and 429 checks); a request at 1024x1024 (its PNG's size checked, timed), then
# test/gpu/serve_smoke.py at SIZE=1024x768 (true CFG with a negative prompt, PNG / WebP / JPEG, same bytes, n = 2, url, a queue
# of 1, bad requests, SIGTERM). Prepared here (about 4 minutes on 2 cores with the kernel cache warm):
#   npx compile models/qwen_image/full.pipeline.json --size 1024x1024,1024x768 --out .gpu/Z6/qwen-image
#   tar -cf - -C .gpu/Z6 qwen-image | xz -T2 -c > .gpu/Z6/qwen-image.tar.xz
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts), .gpu/compiler, .gpu/Z6/qwen-image.tar.xz (the tiny .onnx.data files out of
# the tree for the call: 64 MiB in all).
set -u
W=/tmp/z6; mkdir -p $W /tmp/store; RT=.gpu/rt/run.sh
ln -sfn ../../models .gpu/compiler/models
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
tar -xJf .gpu/Z6/qwen-image.tar.xz -C $W && ls $W
sh $RT serve $W/qwen-image --synthetic-weights 42 --port 8123 --storage /tmp/store --max-queued 1 > $OUT/serve.log 2>&1 &
SPID=$!
python3 - <<'PY' | tee $OUT/square.txt
import json, struct, time, urllib.request
base = "http://127.0.0.1:8123"
t0 = time.time()
while time.time() - t0 < 400:
    try:
        if urllib.request.urlopen(base + "/health/ready", timeout=2).status == 200: break
    except Exception: time.sleep(2)
print(f"ready after {time.time() - t0:.0f} s")
body = json.dumps({"prompt": "a red fox in fresh snow, morning light", "size": "1024x1024", "seed": 42, "num_inference_steps": 8}).encode()
for i in range(2):
    t = time.time()
    r = json.load(urllib.request.urlopen(urllib.request.Request(base + "/v1/images/generations", body, {"content-type": "application/json"}), timeout=120))
    import base64; png = base64.b64decode(r["data"][0]["b64_json"])
    w, h = struct.unpack(">II", png[16:24])
    print(f"1024x1024 request {i + 1}: {1000 * (time.time() - t):.0f} ms, PNG {w}x{h}, {len(png)} bytes, timings {r.get('timings')}")
PY
SIZE=1024x768 timeout 400 python3 test/gpu/serve_smoke.py 8123 $SPID qwen_image $OUT/smoke.json; echo "smoke rc $?"
wait $SPID; echo "serve exit $?"
grep -E '"msg":"(a GPU|pipeline loaded|listening|drained|warm)' $OUT/serve.log | cut -c1-400
