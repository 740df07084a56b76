"""`npx serve` on the GPU host, from the outside: the server a user runs, asked what a user asks.

Run beside a server started with `sh .gpu/rt/run.sh serve ARTIFACT --synthetic-weights SEED --port PORT --storage DIR
--max-queued 1` (the GPU host
has no Node; runtime/gpu/pack.ts bundles the server). Waits for /health/ready, then over HTTP:

  1. a PNG at SIZE (b64_json, seed 42, 8 steps), timed, with 8 step device times; 2. the same request again: the same bytes;
  3. WebP and 4. JPEG of the same image (sharp on the host), each checked by its magic bytes;
  5. Qwen-Image only: a negative prompt with true CFG (guidance 4);
  5b. n = 2 (two PNGs, different seeds, different bytes); response_format "url" (the server started with --storage),
     the file fetched back; three requests at once against --max-queued 1: two served, one 429; /health/live
     answered within 250 ms half a second into a generation; a client that disconnects a quarter second into its generation
     stops it (dc_cancelled_total{stage="running"}), and the next request gets the same PNG as request 1;
  6. bad requests, each a 400 naming its field: a size the pipeline was not compiled for, n = 0,
     an unknown field, a negative prompt on Flux.2; a GET on the POST route: 405;
  7. /metrics (kept; dc_step_device_seconds counts the completed requests' steps) and /v1/models.
Then SIGTERM to the server's pid, and its exit status (0 after draining).

Usage: python3 test/gpu/serve_smoke.py PORT PID FAMILY OUT_JSON   (FAMILY flux2 | qwen_image; SIZE=WxH, default 1024x1024,
for a pipeline compiled at another size, such as the tiny ones' 64x64 on the CPU executor)
Prints one line a check and exits 1 if any failed. Pixels are not compared with anything: synthetic weights give noise.
"""
import base64, http.client, json, os, signal, struct, sys, threading, time, urllib.error, urllib.request

port, pid, family, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
base = f"http://127.0.0.1:{port}"
results, failed = [], 0


def check(name, ok, detail=""):
    global failed
    failed += 0 if ok else 1
    results.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


def call(method, path, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"} if data else {})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), (time.perf_counter() - t0) * 1e3
    except urllib.error.HTTPError as e:
        return e.code, e.read(), (time.perf_counter() - t0) * 1e3


def png_size(b):
    return struct.unpack(">II", b[16:24]) if b[:8] == b"\x89PNG\r\n\x1a\n" else None


t0 = time.time()
while True:
    try:
        status, _, _ = call("GET", "/health/ready", timeout=5)
        if status == 200:
            break
    except OSError:
        pass
    if time.time() - t0 > 400:
        check("ready", False, "no 200 from /health/ready within 400 s")
        sys.exit(1)
    time.sleep(1)
check("ready", True, f"{time.time() - t0:.1f} s after the client started")

size = os.environ.get("SIZE", "1024x1024")
w, h = (int(x) for x in size.split("x"))
req = {"prompt": "a red fox in fresh snow, morning light", "size": size, "response_format": "b64_json",
       "output_format": "png", "num_inference_steps": 8, "seed": 42}
images = []
for i in range(2):
    status, body, ms = call("POST", "/v1/images/generations", req)
    data = json.loads(body) if status == 200 else {}
    img = base64.b64decode(data["data"][0]["b64_json"]) if status == 200 else b""
    images.append(img)
    check(f"png request {i + 1}", status == 200 and png_size(img) == (w, h), f"HTTP {status}, {ms:.0f} ms, {len(img)} bytes, size {png_size(img)}")
    steps = data.get("timings", {}).get("images", [{}])[0].get("step_device_ms", [])
    check(f"png request {i + 1}: each step's device time", len(steps) == 8 and all(x > 0 for x in steps), f"step_device_ms {steps}")
check("png repeat: same bytes", len(images[0]) > 0 and images[0] == images[1], "")

for fmt, magic in (("webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"), ("jpeg", lambda b: b[:2] == b"\xff\xd8")):
    status, body, ms = call("POST", "/v1/images/generations", {**req, "output_format": fmt, "output_compression": 90})
    img = base64.b64decode(json.loads(body)["data"][0]["b64_json"]) if status == 200 else b""
    check(f"{fmt} request", status == 200 and magic(img), f"HTTP {status}, {ms:.0f} ms, {len(img)} bytes" + ("" if status == 200 else f": {body[:300]!r}"))

if family == "qwen_image":
    status, body, ms = call("POST", "/v1/images/generations", {**req, "negative_prompt": "blurry, low quality", "guidance_scale": 4.0})
    check("negative prompt with true CFG", status == 200, f"HTTP {status}, {ms:.0f} ms")

status, body, ms = call("POST", "/v1/images/generations", {**req, "n": 2})
pair = [base64.b64decode(d["b64_json"]) for d in json.loads(body)["data"]] if status == 200 else []
check("n = 2", len(pair) == 2 and all(png_size(x) == (w, h) for x in pair) and pair[0] != pair[1],
      f"HTTP {status}, {ms:.0f} ms, {len(pair)} images, seeds {json.loads(body).get('seeds') if status == 200 else None}")
status, body, ms = call("POST", "/v1/images/generations", {**req, "response_format": "url"})
url = json.loads(body)["data"][0]["url"] if status == 200 else ""
fstatus, fbody, _ = call("GET", url[url.index("/v1/"):]) if url else (0, b"", 0)
check("response_format url", status == 200 and fstatus == 200 and fbody == images[0], f"HTTP {status}, {ms:.0f} ms, {url}, fetched HTTP {fstatus}, {len(fbody)} bytes, the b64 PNG's bytes: {fbody == images[0]}")

burst = []
def one():
    burst.append(call("POST", "/v1/images/generations", req)[0])
threads = [threading.Thread(target=one) for _ in range(3)]
for t in threads:
    t.start()
    time.sleep(0.05)
for t in threads:
    t.join()
check("three at once, a queue of 1", sorted(burst) == [200, 200, 429], f"statuses {sorted(burst)}")

# The server answers while it generates (the GPU loop must not hold Node's event loop).
running = threading.Thread(target=one)
running.start()
time.sleep(0.5)
status, _, live_ms = call("GET", "/health/live", timeout=30)
running.join()
check("answers while generating", status == 200 and live_ms < 250, f"/health/live HTTP {status} in {live_ms:.0f} ms, half a second into a generation")

# A client that goes away a quarter second into its generation (n = 4, so that even the tiny CPU pipelines are still
# generating): the generation stops at its next step (the server sees
# the disconnect while the GPU works), and the next request is served as usual.
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
conn.request("POST", "/v1/images/generations", json.dumps({**req, "n": 4}), {"content-type": "application/json"})
time.sleep(0.25)
conn.sock.close()
time.sleep(0.5)
status, body, ms = call("POST", "/v1/images/generations", req)
img = base64.b64decode(json.loads(body)["data"][0]["b64_json"]) if status == 200 else b""
_, m, _ = call("GET", "/metrics")
stopped = [l for l in m.decode().splitlines() if l.startswith('dc_cancelled_total{stage="running"}')]
check("a client gone mid-generation", stopped == ['dc_cancelled_total{stage="running"} 1'] and status == 200 and img == images[0],
      f"{stopped}; the next request HTTP {status} in {ms:.0f} ms, the same PNG as before: {img == images[0]}")

bad = [("size not compiled", {**req, "size": "1000x1000"}, "size"), ("n = 0", {**req, "n": 0}, "n"),
       ("unknown field", {**req, "style": "vivid"}, "style")]
if family == "flux2":
    bad.append(("negative prompt on Flux.2", {**req, "negative_prompt": "blurry"}, "negative_prompt"))
for name, body_, param in bad:
    status, body, ms = call("POST", "/v1/images/generations", body_)
    err = json.loads(body).get("error", {}) if body[:1] == b"{" else {}
    check(f"bad request: {name}", status == 400 and err.get("param") == param, f"HTTP {status}, param {err.get('param')!r}, message {err.get('message')!r}")
status, body, _ = call("GET", "/v1/images/generations")
check("GET on the POST route", status == 405, f"HTTP {status}")

status, body, _ = call("GET", "/v1/models")
check("/v1/models", status == 200, body[:200].decode(errors="replace"))
status, metrics, _ = call("GET", "/metrics")
check("/metrics", status == 200 and b"dc_info" in metrics, f"{len(metrics)} bytes")
lines = metrics.decode(errors="replace").splitlines()
sample = lambda name: next((float(l.split()[-1]) for l in lines if l.startswith(name + " ")), None)
steps_run, step_count = sample("dc_denoising_steps_total"), sample("dc_step_device_seconds_count")
check("/metrics: a device time for every step that completed", step_count is not None and step_count > 0 and steps_run is not None and step_count <= steps_run,
      f"dc_step_device_seconds_count {step_count}, dc_denoising_steps_total {steps_run} (a stopped generation's steps are counted, not timed)")

os.kill(pid, signal.SIGTERM)
t1 = time.time()
while time.time() - t1 < 60:
    try:
        os.kill(pid, 0)
    except OSError:
        break
    time.sleep(0.5)
else:
    check("drained on SIGTERM", False, "still running after 60 s")

json.dump({"family": family, "results": results, "metrics": metrics.decode(errors="replace")}, open(out, "w"), indent=1)
sys.exit(1 if failed else 0)
