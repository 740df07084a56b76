"""Does splitting a wide FP8 GEMM along N pay? (issue 7; GPU host, PyTorch's cuBLASLt bindings.)

The deferred-dequantization GEMMs (compiler/codegen/dequant.ts) run cuBLASLt's plain FP8 path:
e4m3 operands, unit scales, bf16 output, no bias. For each wide GEMM of Flux.2 [dev] at 1024x1024,
times in one run on one card the whole GEMM and the same GEMM as column blocks (each block a GEMM of N_i columns on the weight's rows [f0, f0 + N_i),
into its own contiguous output: the runtime would write a column window of one output), back to back,
as a median of repetitions with CUDA events (timing.py). Values are checked equal to the whole
GEMM's (the blocks compute the same sums).

    python3 bench/gpu/gemm_split.py OUT.json
"""
import json, sys
import torch
from timing import median_ms

CASES = [  # (name, M, K, N, splits)
    ("single fused in", 4608, 6144, 55296, [[18432, 36864], [18432, 18432, 18432], [27648, 27648]]),
    ("double img mlp in", 4096, 6144, 36864, [[18432, 18432]]),
    ("double img qkv", 4096, 6144, 18432, [[6144, 6144, 6144]]),
    ("single out", 4608, 24576, 6144, [[3072, 3072]]),
]


def main(out):
    torch.manual_seed(0)
    one = torch.ones((), device="cuda", dtype=torch.float32)
    rows = []
    for name, m, k, n, splits in CASES:
        x = (torch.randn(m, k, device="cuda") * 0.5).to(torch.float8_e4m3fn)
        w = (torch.randn(n, k, device="cuda") * 0.5).to(torch.float8_e4m3fn)
        y = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
        whole = lambda: torch._scaled_mm(x, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16, out=y)
        t_whole = median_ms(whole)
        ref = y.clone()
        flops = 2 * m * k * n
        row = {"gemm": name, "m": m, "k": k, "n": n, "whole_ms": t_whole, "whole_tflops": flops / t_whole / 1e9, "splits": []}
        for split in splits:
            blocks, f0 = [], 0
            for width in split:
                blocks.append((w[f0:f0 + width], torch.empty(m, width, device="cuda", dtype=torch.bfloat16)))
                f0 += width
            def run():
                for wb, yb in blocks:
                    torch._scaled_mm(x, wb.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16, out=yb)
            try:
                t = median_ms(run)
                run(); torch.cuda.synchronize()
                same = bool(torch.equal(torch.cat([yb for _, yb in blocks], dim=1), ref))
                row["splits"].append({"split": split, "ms": t, "tflops": flops / t / 1e9, "equal": same})
            except RuntimeError as e:
                row["splits"].append({"split": split, "error": str(e).splitlines()[0]})
        rows.append(row)
        print(json.dumps(row), flush=True)
    json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
