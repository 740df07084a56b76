"""A real safetensors checkpoint through `npx compile --weights` against diffusers' own model (GPU host).

No real checkpoint exists on these machines, so this makes one the way Hugging Face's are made:
diffusers' model at its full config, initialised by its own code (seeded), written by save_pretrained
(sharded safetensors, the index, config.json). The compiled model is then built from that folder by the
bundled compiler (`run.sh compile MODEL.onnx --weights DIR`) and run on the same inputs as diffusers'
model, which runs with its own RoPE (QwenEmbedRope's complex table), not tables handed to it. What this
checks that the synthetic-weights comparison (same_weights.py) cannot: the checkpoint's real key names
and sharding, the buffers computed from its config, the streamed fused weights, a real weights.bin
loaded by the runtime.

  python3 bench/gpu/checkpoint_check.py make qwen_image --ckpt DIR --inputs DIR --reference REF.npy [--seed 0] [--text-valid N] [--size WxH]
  sh .gpu/rt/run.sh compile MODEL.onnx --target h100 --weights DIR --out ART
  sh .gpu/rt/run.sh ART --inputs DIR --out OUTDIR
  python3 bench/gpu/checkpoint_check.py compare --reference REF.npy --compiled OUTDIR/output_sample.npy
"""
import argparse, json, os, sys, time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from same_weights import QWEN_CONFIG, forward, make_inputs  # noqa: E402


def make(args):
    import diffusers
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    cls, cfg = {"flux2_dev": (diffusers.Flux2Transformer2DModel, {}), "qwen_image": (diffusers.QwenImageTransformer2DModel, QWEN_CONFIG)}[args.model]
    torch.manual_seed(args.seed)
    t0 = time.time()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            m = cls(**cfg).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    t1 = time.time()
    if not os.path.exists(args.ckpt):  # the same seeded model a second time (another size's reference): saved once
        m.save_pretrained(args.ckpt, safe_serialization=True, max_shard_size="10GB")
    t2 = time.time()
    grid = tuple(int(v) // 16 for v in reversed(args.size.split("x")))  # W x H -> token rows, columns
    x = make_inputs(args.model, 43, args.text_valid, grid)
    os.makedirs(args.inputs, exist_ok=True)
    for k, v in x.items():
        np.save(os.path.join(args.inputs, f"input_{k}.npy"), v)
    out = forward(m, args.model, x, torch, grid).float().cpu().numpy()
    np.save(args.reference, out)
    files = sorted(os.listdir(args.ckpt))
    size = sum(os.path.getsize(os.path.join(args.ckpt, f)) for f in files)
    print(json.dumps(dict(model=args.model, params=sum(p.numel() for p in m.parameters()), init_s=round(t1 - t0, 1), save_s=round(t2 - t1, 1),
                          checkpoint_bytes=size, files=files, reference_rms=float(np.sqrt((out.astype(np.float64) ** 2).mean())))), flush=True)


def compare(args):
    ref = np.load(args.reference).astype(np.float64).reshape(-1)
    got = np.load(args.compiled).astype(np.float64).reshape(-1)
    if got.size != ref.size:
        raise SystemExit(f"{args.compiled}: {got.size} values, diffusers' output has {ref.size}")
    d = got - ref
    if args.valid is not None:
        # Rows (tokens) apart: the first `valid` of `length` against the rest (padding).
        width = ref.size // args.length
        part = lambda a, b: dict(rel_l2=float(np.linalg.norm(d[a * width:b * width]) / np.linalg.norm(ref[a * width:b * width])),
                                 cosine=float(got[a * width:b * width] @ ref[a * width:b * width] / (np.linalg.norm(got[a * width:b * width]) * np.linalg.norm(ref[a * width:b * width]))))
        print(json.dumps(dict(valid_rows=part(0, args.valid), padding_rows=part(args.valid, args.length) if args.valid < args.length else None)), flush=True)
    print(json.dumps(dict(rel_l2=float(np.linalg.norm(d) / np.linalg.norm(ref)), cosine=float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref))),
                          max_abs=float(np.abs(d).max()), rms_diffusers=float(np.sqrt((ref ** 2).mean())), rms_compiled=float(np.sqrt((got ** 2).mean())),
                          finite_compiled=float(np.isfinite(got).mean()))), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make"); a.add_argument("model", choices=["flux2_dev", "qwen_image"]); a.add_argument("--ckpt", required=True)
    a.add_argument("--inputs", required=True); a.add_argument("--reference", required=True); a.add_argument("--seed", type=int, default=0)
    a.add_argument("--text-valid", type=int, default=256)
    a.add_argument("--size", default="1024x1024", help="the image size WxH (16 pixels a token side)")
    c = sub.add_parser("compare"); c.add_argument("--reference", required=True); c.add_argument("--compiled", required=True)
    c.add_argument("--valid", type=int, help="also compare the first VALID rows of --length and the rest apart"); c.add_argument("--length", type=int)
    args = ap.parse_args()
    (make if args.cmd == "make" else compare)(args)


if __name__ == "__main__":
    main()
