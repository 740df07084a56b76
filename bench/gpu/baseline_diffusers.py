"""The PyTorch baselines for `npx bench`: one denoising step of diffusers' own transformers on the GPU host.

For Flux.2 [dev] (Flux2Transformer2DModel, the dev config: 8 double + 48 single blocks) at 4096 image
+ 512 text tokens and Qwen-Image (QwenImageTransformer2DModel, 60 blocks) at 4096 image + 256 text
tokens (1024 x 1024; --size WxH: (W / 16) x (H / 16) image tokens) (both CFG passes as one batch of 2, and one pass alone), in bf16 with synthetic weights
filled on the GPU from a seeded generator, measures on one card in one process:
  eager      the model as diffusers runs it (SDPA attention)
  compile    torch.compile (default mode), compile time reported separately
as milliseconds per step (CUDA events, median of `--iters` after warm-up), achieved TFLOP/s for the
FLOPs the compiler counts (passed in with --flops, else not reported), and peak GPU memory.

diffusers is not installed on the GPU host: carry its src/ folder and put it on PYTHONPATH, e.g.
  git --git-dir=/work/.mirror/huggingface+diffusers/repo/.git archive HEAD src/diffusers | tar -x -C .gpu/diffusers
  (GPU) PYTHONPATH=.gpu/diffusers/src python3 bench/gpu/baseline_diffusers.py flux2_dev --out $OUT/flux2.json

Weights are synthetic (labelled so in the JSON): 2-D weights uniform with unit-variance outputs
(bound sqrt(3/fan_in)), norm weights near 1, biases small; the same seed gives the same weights.
"""
import argparse, json, statistics, sys, time

import torch
from timing import cuda_times_ms


def fill_synthetic(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator(device="cuda").manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            u = torch.rand(p.shape, generator=g, device="cuda", dtype=torch.float32) * 2 - 1
            if p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(u * (3.0 / fan_in) ** 0.5)
            elif name.endswith("bias"):
                p.copy_(u * 0.01)
            else:
                p.copy_(1 + 0.1 * u)


def build(model_name: str):
    """The model with bf16 parameters allocated on the GPU (fp32 would not fit: 32 B parameters)."""
    import diffusers
    configs = {
        "flux2_dev": (diffusers.Flux2Transformer2DModel, {}),
        "qwen_image": (diffusers.QwenImageTransformer2DModel,
                       dict(patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
                            num_attention_heads=24, joint_attention_dim=3584, axes_dims_rope=(16, 56, 56), guidance_embeds=False)),
    }
    if model_name not in configs:
        raise SystemExit(f"unknown model {model_name!r}: expected one of {sorted(configs)}")
    cls, cfg = configs[model_name]
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            return cls(**cfg)
    finally:
        torch.set_default_dtype(torch.float32)


def inputs(model_name: str, batch: int, g: torch.Generator, grid=(64, 64)):
    bf = dict(device="cuda", dtype=torch.bfloat16)
    h, w = grid
    if model_name == "flux2_dev":
        L = 512
        img_ids = torch.cartesian_prod(torch.arange(1), torch.arange(h), torch.arange(w), torch.arange(1))[None].cuda()
        txt_ids = torch.cartesian_prod(torch.arange(1), torch.arange(1), torch.arange(1), torch.arange(L))[None].cuda()
        return dict(hidden_states=torch.randn(batch, h * w, 128, generator=g, **bf),
                    encoder_hidden_states=torch.randn(batch, L, 15360, generator=g, **bf),
                    timestep=torch.full((batch,), 0.75, **bf), img_ids=img_ids.expand(batch, -1, -1),
                    txt_ids=txt_ids.expand(batch, -1, -1), guidance=torch.full((batch,), 4.0, **bf), return_dict=False)
    L = 256
    mask = torch.ones(batch, L, dtype=torch.long, device="cuda")
    return dict(hidden_states=torch.randn(batch, h * w, 64, generator=g, **bf),
                encoder_hidden_states=torch.randn(batch, L, 3584, generator=g, **bf),
                encoder_hidden_states_mask=mask, timestep=torch.full((batch,), 0.75, **bf),
                img_shapes=[(1, h, w)] * batch, return_dict=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["flux2_dev", "qwen_image"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--flops", type=float, default=0, help="FLOPs per step per batch item (the compiler's count)")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--size", default="1024x1024", help="the image size WxH (16 pixels a token side)")
    a = ap.parse_args()
    grid = tuple(int(v) // 16 for v in reversed(a.size.split("x")))
    torch.manual_seed(a.seed)
    m = build(a.model).eval()
    fill_synthetic(m, a.seed)
    g = torch.Generator(device="cuda").manual_seed(a.seed + 1)
    x = inputs(a.model, a.batch, g, grid)
    res = dict(model=a.model, batch=a.batch, size=a.size, weights=f"synthetic (seed {a.seed})", device=torch.cuda.get_device_name(),
               torch=torch.__version__, modes={})
    for mode in a.modes.split(","):
        fn_model = m
        compile_s = None
        if mode == "compile":
            t0 = time.time()
            fn_model = torch.compile(m)
            with torch.no_grad():
                fn_model(**x)
            torch.cuda.synchronize()
            compile_s = time.time() - t0
        torch.cuda.reset_peak_memory_stats()
        with torch.no_grad():
            times = cuda_times_ms(lambda: fn_model(**x), iters=1, reps=a.iters, warmup=2)
        ms = statistics.median(times)
        entry = dict(ms=ms, all_ms=times, peak_gib=torch.cuda.max_memory_allocated() / 2**30)
        if compile_s is not None:
            entry["compile_s"] = compile_s
        if a.flops:
            entry["tflops"] = a.flops * a.batch / (ms / 1e3) / 1e12
        res["modes"][mode] = entry
        print(f"{a.model} batch {a.batch} {mode}: {ms:.1f} ms/step" + (f", compile {compile_s:.0f} s" if compile_s else ""), flush=True)
    with torch.no_grad():
        out = m(**x)[0]
    res["output_rms"] = float(out.float().pow(2).mean().sqrt())
    json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
