"""The PyTorch baseline for `npx bench --e2e`: diffusers' / transformers' stages of one request (--size WxH, default 1024x1024).

For Flux.2 [dev] and Qwen-Image, in bf16 with synthetic weights (baseline_diffusers.fill_synthetic:
the same rule as the compiled run, not the same values), each stage built, timed and freed in turn
(the whole bf16 Flux.2 pipeline, text encoder 35 GB + transformer 64 GB, does not fit one 80 GB card;
so the stages are timed one at a time and the report says so):

  text_encoder  transformers' model of the exported graph's config and taps: Flux.2, MistralModel with
                the 30 layers the export keeps (Mistral Small 3.1: hidden 5120, 32/8 heads, MLP 32768),
                hidden states of layers 10, 20, 30 stacked to [1, 512, 15360], 512 left-padded
                positions (diffusers' Mistral3 runs all 40 layers: its real stage is longer);
                Qwen-Image, Qwen2Model (the Qwen2.5-VL-7B language model), last hidden state, one call
                per prompt (prompt, negative prompt with true CFG) at that prompt's own unpadded length
                (--encoder-tokens), as QwenImagePipeline
  denoise       `--steps` calls of diffusers' transformer (Qwen-Image with CFG: two per step, cond and
                uncond, each at its prompt's own text length (--text-tokens), combined with diffusers'
                norm rescale; Flux.2 at 512 text positions, as Flux2Pipeline pads) and the
                scheduler's Euler step (FlowMatchEulerDiscreteScheduler with each pipeline's shift/mu)
  vae_decode    AutoencoderKLFlux2 / AutoencoderKLQwenImage (default configs, as the exports) on the
                1x32xH/8xW/8 / 1x16x1xH/8xW/8 latent (1024x1024: 128 x 128)
  image_encode  VaeImageProcessor's postprocess (to uint8 on the GPU, copy to the host) and a PIL PNG

Times: CUDA events, median of `--iters` after one warm-up (image_encode: perf_counter). Writes JSON:
{device, torch, weights, stages: {NAME: {ms, calls, peak_gib, note}}, notes}. diffusers as source:
PYTHONPATH=<diffusers>/src.
"""
import argparse, gc, io, json, statistics, sys, time

import torch

from baseline_diffusers import build as build_transformer, fill_synthetic
from timing import median_ms


def free():
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def on_gpu_bf16(make):
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            return make().eval()
    finally:
        torch.set_default_dtype(torch.float32)


def text_encoder(family, seed, iters, lengths):
    from transformers import MistralConfig, MistralModel, Qwen2Config, Qwen2Model
    if family == "flux2":
        cfg_ = MistralConfig(vocab_size=131072, hidden_size=5120, intermediate_size=32768, num_hidden_layers=30, num_attention_heads=32,
                             num_key_value_heads=8, head_dim=128, max_position_embeddings=131072, rope_theta=1e9, rms_norm_eps=1e-5)
        m = on_gpu_bf16(lambda: MistralModel(cfg_))
    else:
        cfg_ = Qwen2Config(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                           num_key_value_heads=4, max_position_embeddings=128000, rope_theta=1e6, rms_norm_eps=1e-6)
        m = on_gpu_bf16(lambda: Qwen2Model(cfg_))
    fill_synthetic(m, seed)
    g = torch.Generator(device="cuda").manual_seed(seed + 2)

    def call(L):
        ids = torch.randint(10, 497, (1, L), generator=g, device="cuda")
        mask = torch.ones(1, L, dtype=torch.long, device="cuda")
        if family == "flux2":
            mask[:, : L // 2] = 0  # left padding, as Flux2Pipeline pads to 512

        def run():
            with torch.no_grad():
                if family == "flux2":
                    out = m(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
                    h = torch.stack([out.hidden_states[k] for k in (10, 20, 30)], dim=1)
                    return h.permute(0, 2, 1, 3).reshape(1, L, 3 * 5120)
                return m(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        return median_ms(run, iters=1, reps=iters)

    per = [call(L) for L in lengths]
    res = dict(ms=sum(per), ms_per_call=per, calls=len(per), tokens=lengths, peak_gib=torch.cuda.max_memory_allocated() / 2**30,
               parameters_b=sum(p.numel() for p in m.parameters()) / 1e9)
    del m
    return res


def schedule(family, steps, mu):
    """diffusers' scheduler with each pipeline's settings; mu comes from the caller (the compiled pipeline's own
    schedule: Flux.2's empirical mu, Qwen-Image's calculate_shift), so both sides run the same timesteps."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    import numpy as np
    sigmas = np.linspace(1.0, 1 / steps, steps)
    if family == "flux2":
        s = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                            base_image_seq_len=256, max_image_seq_len=4096, time_shift_type="exponential")
    else:
        s = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
                                            max_image_seq_len=8192, time_shift_type="exponential", shift_terminal=0.02)
    s.set_timesteps(sigmas=sigmas, mu=mu, device="cuda")
    return s


def denoise(family, seed, iters, steps, guidance, mu, text_tokens, grid):
    from baseline_diffusers import inputs
    name = "flux2_dev" if family == "flux2" else "qwen_image"
    m = build_transformer(name).eval()
    fill_synthetic(m, seed)
    g = torch.Generator(device="cuda").manual_seed(seed + 1)
    x = inputs(name, 1, g, grid)
    latents0 = x.pop("hidden_states")
    if family == "qwen_image":  # each prompt at its own (unpadded) text length, as QwenImagePipeline
        def text(L):
            return dict(x, encoder_hidden_states=torch.randn(1, L, 3584, generator=g, device="cuda", dtype=torch.bfloat16),
                        encoder_hidden_states_mask=torch.ones(1, L, dtype=torch.long, device="cuda"))
        x = text(text_tokens[0])
        neg = text(text_tokens[1]) if len(text_tokens) > 1 else None
    else:
        neg = None

    def loop():
        s = schedule(family, steps, mu)
        lat = latents0.clone()
        with torch.no_grad():
            for t in s.timesteps:
                ts = t.expand(1).to(lat.dtype) / 1000
                v = m(hidden_states=lat, **dict(x, timestep=ts))[0]
                if neg is not None:
                    u = m(hidden_states=lat, **dict(neg, timestep=ts))[0]
                    comb = u + guidance * (v - u)
                    v = comb * (torch.norm(v, dim=-1, keepdim=True) / torch.norm(comb, dim=-1, keepdim=True))
                lat = s.step(v, t, lat, return_dict=False)[0]
        return lat

    ms = median_ms(loop, iters=1, reps=iters)
    calls = steps * (2 if neg is not None else 1)
    res = dict(ms=ms, calls=calls, ms_per_call=ms / calls, text_tokens=text_tokens, peak_gib=torch.cuda.max_memory_allocated() / 2**30)
    del m
    return res


def vae(family, seed, iters, grid):
    import diffusers
    h, w = 2 * grid[0], 2 * grid[1]  # latents: 8 pixels a side, a token 2 x 2 latents
    if family == "flux2":
        m = diffusers.AutoencoderKLFlux2().to("cuda", torch.bfloat16).eval()
        z = torch.randn(1, 32, h, w, device="cuda", dtype=torch.bfloat16)
    else:
        m = diffusers.AutoencoderKLQwenImage().to("cuda", torch.bfloat16).eval()
        z = torch.randn(1, 16, 1, h, w, device="cuda", dtype=torch.bfloat16)
    fill_synthetic(m, seed)
    out = {}

    def run():
        with torch.no_grad():
            out["x"] = m.decode(z, return_dict=False)[0]

    ms = median_ms(run, iters=1, reps=iters)
    res = dict(ms=ms, calls=1, peak_gib=torch.cuda.max_memory_allocated() / 2**30)
    x = out["x"]
    del m
    return res, x


def image_encode(x, iters):
    from PIL import Image
    x = x.reshape(1, 3, x.shape[-2], x.shape[-1])

    def run():
        t0 = time.perf_counter()
        img = (x / 2 + 0.5).clamp(0, 1).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        return (time.perf_counter() - t0) * 1e3

    run()
    return dict(ms=statistics.median([run() for _ in range(iters)]), calls=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("family", choices=["flux2", "qwen_image"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--no-cfg", action="store_true")
    ap.add_argument("--mu", type=float, required=True, help="the schedule's shift parameter (the compiled pipeline's own)")
    ap.add_argument("--encoder-tokens", required=True, help="text encoder positions per prompt, comma-separated (CFG: prompt,negative)")
    ap.add_argument("--text-tokens", required=True, help="transformer text tokens per prompt, comma-separated")
    ap.add_argument("--size", default="1024x1024", help="the image size WxH (16 pixels a token side)")
    a = ap.parse_args()
    grid = tuple(int(v) // 16 for v in reversed(a.size.split("x")))  # token rows x columns
    encoder_tokens = [int(v) for v in a.encoder_tokens.split(",")]
    text_tokens = [int(v) for v in a.text_tokens.split(",")]
    cfg = len(text_tokens) > 1 and not a.no_cfg
    if not cfg:
        encoder_tokens, text_tokens = encoder_tokens[:1], text_tokens[:1]
    torch.manual_seed(a.seed)
    res = dict(family=a.family, device=torch.cuda.get_device_name(), torch=torch.__version__, weights=f"synthetic (seed {a.seed})",
               steps=a.steps, size=a.size, cfg=cfg, stages={}, notes=["stages timed one at a time, each model built, timed and freed before the next"])

    def save():
        json.dump(res, open(a.out, "w"), indent=1)

    for name, fn in [("text_encoder", lambda: text_encoder(a.family, a.seed, a.iters, encoder_tokens)),
                     ("denoise", lambda: denoise(a.family, a.seed, a.iters, a.steps, a.guidance, a.mu, text_tokens, grid))]:
        free()
        t0 = time.time()
        try:
            res["stages"][name] = fn()
        except Exception as e:  # noqa: BLE001 - reported, the other stages still run
            res["notes"].append(f"{name} failed: {type(e).__name__}: {str(e)[:300]}")
        print(f"{a.family} {name}: {res['stages'].get(name)} ({time.time() - t0:.0f} s)", flush=True)
        save()
    free()
    try:
        res["stages"]["vae_decode"], x = vae(a.family, a.seed, a.iters, grid)
        res["stages"]["image_encode"] = image_encode(x, a.iters)
    except Exception as e:  # noqa: BLE001
        res["notes"].append(f"vae_decode failed: {type(e).__name__}: {str(e)[:300]}")
    print(f"{a.family} vae/image: {res['stages'].get('vae_decode')} {res['stages'].get('image_encode')}", flush=True)
    save()


if __name__ == "__main__":
    sys.exit(main())
