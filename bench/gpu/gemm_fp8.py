"""FP8 GEMM path measurement (with and without fast accumulation) on the GPU host (PyTorch's cuBLASLt bindings; no Node there).

For each GEMM shape of Flux.2 [dev] at 1024x1024 (M tokens, K in, N out), measures in one run on
one card: bf16 matmul, FP8 e4m3 with per-tensor scales, and FP8 with the compiler's scaling
(activations per token, weights per output channel: torch._scaled_mm row-wise, cuBLASLt's
outer-vector scale mode), as TFLOP/s; and the accuracy of the row-wise FP8 GEMM against the
compiler's simulation of it (fp32 matmul of the dequantized operands), as relative L2.
Quantization follows compiler/ops/quant.ts: scale = amax/448 in fp32, q = e4m3(x/scale).

    python3 bench/gpu/gemm_fp8.py OUT_DIR
"""
import json, sys, time
import torch
from timing import cuda_times_ms

SHAPES = [  # (name, M, K, N)
    ("double img qkv", 4096, 6144, 18432),
    ("double img out", 4096, 6144, 6144),
    ("double img mlp in", 4096, 6144, 36864),
    ("double img mlp out", 4096, 18432, 6144),
    ("double txt qkv", 512, 6144, 18432),
    ("single fused in", 4608, 6144, 55296),
    ("single out", 4608, 24576, 6144),
]

def quantize_rows(x):
    amax = x.abs().amax(dim=1, keepdim=True).float()
    scale = torch.where(amax > 0, amax / 448.0, torch.ones_like(amax))
    q = (x.float() / scale).to(torch.float8_e4m3fn)
    return q, scale

def timed(fn, iters=20):
    """Seconds per call."""
    return cuda_times_ms(fn, iters=iters, warmup=3)[0] / 1e3

def main(out_dir):
    torch.manual_seed(0)
    dev = torch.cuda.get_device_name()
    rows = []
    for name, m, k, n in SHAPES:
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        w = (torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02)
        flop = 2.0 * m * k * n
        t_bf16 = timed(lambda: x @ w.t())
        xq, xs = quantize_rows(x)
        wq, ws = quantize_rows(w)
        one = torch.ones((), device="cuda")
        t_tensor = timed(lambda: torch._scaled_mm(xq, wq.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
        # Unit scales (the deferred-dequantization path) with and without fast accumulation
        # (CUBLASLT_MATMUL_DESC_FAST_ACCUM: no periodic promotion of the tensor-core partial sums).
        t_fast = timed(lambda: torch._scaled_mm(xq, wq.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16, use_fast_accum=True))
        unit_sim = xq.float() @ wq.float().t()
        def unit_err(fast):
            y = torch._scaled_mm(xq, wq.t(), scale_a=one, scale_b=one, out_dtype=torch.float32, use_fast_accum=fast)
            return ((y - unit_sim).norm() / unit_sim.norm()).item()
        err_exact, err_fast = unit_err(False), unit_err(True)
        try:
            rowwise = lambda: torch._scaled_mm(xq, wq.t(), scale_a=xs, scale_b=ws.t(), out_dtype=torch.bfloat16)
            t_row = timed(rowwise)
            y = torch._scaled_mm(xq, wq.t(), scale_a=xs, scale_b=ws.t(), out_dtype=torch.float32)
            sim = (xq.float() * xs) @ (wq.float() * ws).t()
            err = ((y - sim).norm() / sim.norm()).item()
            y16 = rowwise().float()
            err16 = ((y16 - sim).norm() / sim.norm()).item()
        except Exception as e:  # row-wise scaling unavailable on this build
            t_row, err, err16 = float("nan"), float("nan"), float("nan")
            print("rowwise failed:", e)
        rows.append(dict(name=name, m=m, k=k, n=n, bf16_tflops=flop / t_bf16 / 1e12, fp8_tensor_tflops=flop / t_tensor / 1e12,
                         fp8_tensor_fast_accum_tflops=flop / t_fast / 1e12, unit_vs_simulation_relL2=err_exact,
                         unit_fast_accum_vs_simulation_relL2=err_fast,
                         fp8_rowwise_tflops=flop / t_row / 1e12, rowwise_vs_simulation_relL2_fp32_out=err,
                         rowwise_vs_simulation_relL2_bf16_out=err16))
        print(json.dumps(rows[-1]))
    with open(f"{out_dir}/gemm_fp8.json", "w") as f:
        json.dump(dict(device=dev, torch=torch.__version__, cuda=torch.version.cuda, date=time.strftime("%Y-%m-%d"), rows=rows), f, indent=1)

main(sys.argv[1])
