"""PyTorch baseline for the VAE decoders' convolutions and norms (GPU host; no Node there).

For each distinct convolution of the Flux.2 / Qwen-Image VAE decoders at 1024x1024 (the list
bench/gpu/conv-shapes.ts writes), times torch's conv2d in bf16 through cuDNN (benchmark mode, so
cuDNN picks its best algorithm), NCHW and channels_last, on the same card in the same run as our
kernels; where the graph upsamples first (nearest 2x), also F.interpolate + conv2d (PyTorch's own
sequence), since our kernel folds the upsampling into its input indexing. Also GroupNorm(32)+SiLU
at the Flux.2 shapes, as the norm kernels' reference point. Times in microseconds (CUDA events).

    python3 bench/gpu/conv_vae.py SHAPES.json OUT.json
"""
import json, sys
import torch
import torch.nn.functional as F
from timing import cuda_times_ms

def timed(fn, iters=10):
    """Microseconds per call."""
    return cuda_times_ms(fn, iters=iters, warmup=3)[0] * 1e3

def main(shapes_file, out_file):
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    convs = []
    for s in json.load(open(shapes_file)):
        x = torch.randn(1, s["ci"], s["hs"], s["ws"], device="cuda", dtype=torch.bfloat16)
        w = torch.randn(s["co"], s["ci"], s["kh"], s["kw"], device="cuda", dtype=torch.bfloat16) * 0.05
        b = torch.randn(s["co"], device="cuda", dtype=torch.bfloat16)
        pad = (s["pt"], s["pl"])
        xu = F.interpolate(x, scale_factor=s["up"], mode="nearest") if s["up"] > 1 else x
        row = {"kernel": s["kernel"]}
        row["nchw"] = timed(lambda: F.conv2d(xu, w, b, padding=pad))
        xc, wc = xu.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
        row["nhwc"] = timed(lambda: F.conv2d(xc, wc, b, padding=pad))
        if s["up"] > 1:
            row["up_nchw"] = timed(lambda: F.conv2d(F.interpolate(x, scale_factor=s["up"], mode="nearest"), w, b, padding=pad))
            x0 = x.contiguous(memory_format=torch.channels_last)
            row["up_nhwc"] = timed(lambda: F.conv2d(F.interpolate(x0, scale_factor=s["up"], mode="nearest"), wc, b, padding=pad))
        row["tflops_nchw"] = s["flops"] / row["nchw"] / 1e6
        row["tflops_nhwc"] = s["flops"] / row["nhwc"] / 1e6
        print(json.dumps(row), flush=True)
        convs.append(row)
        del x, w, xu, xc, wc
    norms = []
    for c, hw in [(512, 128), (512, 256), (512, 512), (256, 512), (256, 1024), (128, 1024)]:
        x = torch.randn(1, c, hw, hw, device="cuda", dtype=torch.bfloat16)
        g, b = torch.randn(c, device="cuda", dtype=torch.bfloat16), torch.randn(c, device="cuda", dtype=torch.bfloat16)
        us = timed(lambda: F.silu(F.group_norm(x, 32, g, b, eps=1e-6)))
        row = {"c": c, "hw": hw, "groupnorm_silu_us": us}
        print(json.dumps(row), flush=True)
        norms.append(row)
    json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "convs": convs, "norms": norms}, open(out_file, "w"), indent=1)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
