"""The weight-only FP8 GEMV kernels of bench/gpu/gemv-cases.ts on the GPU: correctness and time.

  python3 bench/gpu/gemv_fp8.py DIR OUT

For each case of DIR/cases.json (kernel in DIR/gemv.cubin, loaded through the driver API in torch's
context): random e4m3 codes (no NaN code), per-channel fp32 scales, bf16 x and bias; the output is
poisoned (all bits set: NaN) before the launch; the result is compared with a float64 reference of
the dequantized product, sum_k x[m,k] * code[n,k] * scale[n] + bias[n], computed in chunks on the
GPU (bar: relative L2 <= 4e-3; every element within 2^-7 of its reference value plus 2^-12 of the
output's rms, i.e. bf16 rounding plus fp32 accumulation where a sum cancels; no NaN left).
Times (CUDA events, median of 5 x 10 calls): the kernel; torch's bf16 F.linear(x, w, bias) at the
same shape (cuBLASLt, for the M = 1, 2, 4 default cases); a device-to-device copy of the fp8 weight's size (the bandwidth bar).
Writes OUT/gemv.json and prints one line per case.
"""
import ctypes
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_ms  # noqa: E402

DIR, OUT = sys.argv[1], sys.argv[2]
cases = json.load(open(os.path.join(DIR, "cases.json")))
torch.cuda.init()
torch.zeros(1, device="cuda")
cuda = ctypes.CDLL("libcuda.so.1")


def check(rc, what):
    if rc != 0:
        raise SystemExit(f"{what}: CUDA error {rc}")


image = open(os.path.join(DIR, "gemv.cubin"), "rb").read()
module = ctypes.c_void_p()
check(cuda.cuModuleLoadData(ctypes.byref(module), ctypes.c_char_p(image)), "cuModuleLoadData")
functions = {}


def function(name, shared):
    f = functions.get(name)
    if f is None:
        f = ctypes.c_void_p()
        check(cuda.cuModuleGetFunction(ctypes.byref(f), module, name.encode()), f"cuModuleGetFunction {name}")
        if shared > 48 * 1024:
            check(cuda.cuFuncSetAttribute(f, 8, ctypes.c_int(shared)), "cuFuncSetAttribute")
        functions[name] = f
    return f


def launcher(c, tensors):
    f = function(c["kernel"], c["shared"])
    ptrs = [ctypes.c_void_p(t.data_ptr()) for t in tensors]
    params = (ctypes.c_void_p * len(ptrs))(*[ctypes.cast(ctypes.pointer(p), ctypes.c_void_p) for p in ptrs])
    stream = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)

    def go():
        check(cuda.cuLaunchKernel(f, c["grid"], 1, 1, c["block"], 1, 1, c["shared"], stream, params, None), "cuLaunchKernel")
    go.keep = (ptrs, params)
    return go


def copy_bandwidth(nbytes):
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), iters=10, reps=5)
    del src, dst
    return ms, 2 * nbytes / ms / 1e6  # GB/s, read + write


def reference(x, codes, scales, bias, chunk=1 << 16):
    n = codes.shape[0]
    out = torch.empty(x.shape[0], n, dtype=torch.float64, device="cuda")
    xd = x.double()
    for s in range(0, n, chunk):
        w = codes[s:s + chunk].view(torch.float8_e4m3fn).double() * scales[s:s + chunk].double()[:, None]
        out[:, s:s + chunk] = xd @ w.t() + bias[s:s + chunk].double()
    return out


results = []
info = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
weights = {}
for c in cases:
    m, n, k = c["m"], c["n"], c["k"]
    key = (n, k)
    g = torch.Generator(device="cuda").manual_seed(n ^ k)
    if key not in weights:
        weights.clear()
        torch.cuda.empty_cache()
        codes = torch.randint(0, 256, (n, k), dtype=torch.uint8, device="cuda", generator=g)
        codes[(codes & 0x7F) == 0x7F] = 0x7E  # no NaN codes
        scales = (torch.rand(n, device="cuda", generator=g) * 2 + 0.5) * (3 / k) ** 0.5 / 448
        bias = (torch.randn(n, device="cuda", generator=g) * 0.02).bfloat16()
        weights[key] = (codes, scales, bias)
    codes, scales, bias = weights[key]
    x = (torch.randn(m, k, device="cuda", generator=g) * 2).bfloat16()
    y = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
    y.view(torch.int16).fill_(-1)  # poison: 0xFFFF is a NaN
    run = launcher(c, [x, codes, scales, bias, y])
    run()
    torch.cuda.synchronize()
    ref = reference(x, codes, scales, bias)
    got = y.double()
    nan = int(torch.isnan(got).sum())
    rel = float((got - ref).norm() / ref.norm())
    # bf16 rounding (at most 2^-8 relative) plus room for fp32 accumulation where the sum cancels
    ulp = ref.abs() * 2.0 ** -7 + ref.pow(2).mean().sqrt() * 2.0 ** -12
    worst = float(((got - ref).abs() / ulp).max())
    ok = nan == 0 and rel <= 4e-3 and worst <= 1.0
    ms = median_ms(run, iters=10, reps=5)
    wbytes = n * k + 4 * n + 2 * n + 2 * m * k + 2 * m * n
    r = dict(c, nan=nan, relL2=rel, worstOver2Ulp=worst, passed=ok, ms=ms, GBps=wbytes / ms / 1e6)
    if c["label"].endswith("m1 default") or "m2" in c["label"] or "m4" in c["label"]:
        wb = codes.view(torch.float8_e4m3fn).to(torch.bfloat16)  # the same shape in bf16 (values: timing only)
        r["bf16_ms"] = median_ms(lambda: F.linear(x, wb, bias), iters=10, reps=5)
        r["bf16_GBps"] = (2 * n * k) / r["bf16_ms"] / 1e6
        del wb
        torch.cuda.empty_cache()
    results.append(r)
    print(json.dumps({k2: (round(v, 5) if isinstance(v, float) else v) for k2, v in r.items()}), flush=True)
    del ref, got, y, x
    torch.cuda.empty_cache()

weights.clear()
torch.cuda.empty_cache()
copy_ms, copy_gbps = copy_bandwidth(2217984 * 3072)
info.update(copy_ms=copy_ms, copy_GBps=copy_gbps)
print(json.dumps(info), flush=True)
json.dump({"info": info, "cases": results}, open(os.path.join(OUT, "gemv.json"), "w"), indent=1)
