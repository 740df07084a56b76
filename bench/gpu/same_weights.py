"""Output of the compiled model vs diffusers' own model holding the SAME weights (issue 7).

The compiled model's --synthetic-weights SEED are drawn on the GPU by dc_fill (runtime/gpu/support.cu);
`run-cli ARTIFACT --synthetic-fills SEED --out FILLS.json` lists every draw with the provenance of each
weight entry (compiler/weights-file.ts "Provenance": initializer = reshape(permute(E[box], perm), shape)).
This script redraws every fill in torch exactly (the 32-bit hash in int64 with masks, u, fma(u, scale,
offset) in float32, the element type's rounding: bf16 / e4m3 to nearest even, e4m3 saturated), checks
its draws against the CPU mirror's bits (the samples in FILLS.json), dequantizes fp8 entries (e4m3 code x
per-channel fp32 scale) into the bf16 parameters of diffusers' model (Flux2Transformer2DModel /
QwenImageTransformer2DModel, full config, on the GPU), runs one step on the inputs the compiled model ran
on and compares with its output (relative L2, cosine, float64).

Steps (GPU host; diffusers' src on PYTHONPATH):
  python3 bench/gpu/same_weights.py inputs MODEL --out DIR [--text-valid N]   # DIR/input_<name>.npy (bf16 values; N < 256: Qwen-Image text padding)
  sh .gpu/rt/run.sh ARTIFACT --synthetic-weights 42 --inputs DIR --out DIR   # DIR/output_sample.synthetic.npy
  python3 bench/gpu/same_weights.py compare MODEL --fills FILLS.json --inputs DIR \
      --compiled DIR/output_sample.synthetic.npy --out RESULT.json
  python3 bench/gpu/same_weights.py self-test CHECKS.json [--backend numpy|torch]   # the draws vs the TS mirror

What is not a plain copy, and how it is handled:
  - fp8 entries become bf16 parameters: bf16(code x scale) rounds each weight once more (2^-9 relative);
    the compiled GEMM multiplies the exact code and scale.
  - Qwen-Image's RoPE tables (cos/sin of the export's frequency buffer, computed at load time) are learned
    entries without sources: the compiled model draws the tables themselves. diffusers is given the same
    tables: its RoPE function is replaced by x·cos + rot(x)·sin with the drawn [tokens, 128] tables
    (interleaved pairs, as the compiled AttentionPack), text segment 0, image segment 1.
  - Parameters no entry sources are listed (and zeroed); initializers without a parameter stop the run.
"""
import argparse, json, os, re, sys, time

import numpy as np

M32 = 0xFFFFFFFF
FILL_F32, FILL_BF16, FILL_F16, FILL_E4M3, FILL_ZERO = 0, 1, 2, 3, 4


# ---- dc_fill, mirrored (works on numpy int64 arrays and torch int64 tensors alike) -----------------
def _mul32(h, c):
    """(h * c) mod 2^32 for 0 <= h < 2^32, without int64 overflow (each partial product < 2^48)."""
    return (h * (c & 0xFFFF) + (((h * (c >> 16)) & 0xFFFF) << 16)) & M32


def dc_hash(i, seed):
    h = (_mul32(i, 0x9E3779B1) + seed) & M32
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def fill_values(index, seed, scale, offset0):
    """float32 values of elements `index` (int64): u from the hash, then fma(u, scale, offset) rounded once.
    u (24 bits) x float32 scale (24 bits) is exact in float64, and so is the sum with the offsets used."""
    i = (index & M32) ^ _mul32(index >> 32, 0x27D4EB2D)
    h = dc_hash(i, seed)
    scale, offset0 = float(np.float32(scale)), float(np.float32(offset0))
    if _is_torch(h):
        u = (h >> 8).double() * (2.0 ** -23) - 1.0
        return (u * scale + offset0).float()
    u = (h >> 8).astype(np.float64) * (2.0 ** -23) - 1.0
    return (u * scale + offset0).astype(np.float32)


def stored_bits(v, kind):
    """The stored bits of float32 values v as dc_fill writes them (an int64 array)."""
    if _is_torch(v):
        import torch
        if kind == FILL_F32:
            return v.view(torch.int32).long() & M32
        if kind == FILL_BF16:
            return v.to(torch.bfloat16).view(torch.int16).long() & 0xFFFF
        if kind == FILL_F16:
            return v.to(torch.float16).view(torch.int16).long() & 0xFFFF
        if kind == FILL_E4M3:
            return v.clamp(-448, 448).to(torch.float8_e4m3fn).view(torch.uint8).long()
        return torch.zeros_like(v, dtype=torch.long)
    b = v.view(np.uint32).astype(np.int64)
    if kind == FILL_F32:
        return b
    if kind == FILL_BF16:  # nearest even (numpy has no bfloat16)
        return ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) & 0xFFFF
    if kind == FILL_F16:
        return v.astype(np.float16).view(np.uint16).astype(np.int64)
    if kind == FILL_ZERO:
        return np.zeros_like(b)
    raise SystemExit(f"the numpy backend does not round to e4m3 (kind {kind}): use --backend torch")


def stored_values(index, f, torch):
    """The fill's elements `index` as torch values of their stored type (e4m3 codes as float8_e4m3fn)."""
    if f["kind"] == FILL_ZERO:
        return torch.zeros(index.shape, dtype=torch.uint8, device=index.device)
    v = fill_values(index, f["seed"], f["scale"], f["offset0"])
    return {FILL_F32: lambda: v, FILL_BF16: lambda: v.to(torch.bfloat16), FILL_F16: lambda: v.to(torch.float16),
            FILL_E4M3: lambda: v.clamp(-448, 448).to(torch.float8_e4m3fn)}[f["kind"]]()


def self_test(checks, backend):
    """checks: [{kind, seed, scale, offset0, index, bits}] from the TS mirror; returns the mismatches."""
    if backend == "torch":
        import torch
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        arr = lambda xs: torch.tensor(xs, dtype=torch.int64, device=dev)
        host = lambda t: t.cpu().numpy()
    else:
        arr = lambda xs: np.array(xs, dtype=np.int64)
        host = lambda t: t
    bad = []
    groups = {}
    for c in checks:
        groups.setdefault((c["kind"], c["seed"], c["scale"], c["offset0"]), []).append(c)
    for (kind, seed, scale, offset0), cs in groups.items():
        got = host(stored_bits(fill_values(arr([c["index"] for c in cs]), seed, scale, offset0), kind))
        bad += [dict(c, got=int(g)) for c, g in zip(cs, got) if int(g) != c["bits"]]
    return bad


# ---- the model -------------------------------------------------------------------------------------
QWEN_CONFIG = dict(patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
                   num_attention_heads=24, joint_attention_dim=3584, axes_dims_rope=(16, 56, 56), guidance_embeds=False)


def build(model_name, torch):
    """diffusers' model, bf16 parameters allocated on the GPU but not initialised (every one is filled)."""
    import diffusers
    cls, cfg = {"flux2_dev": (diffusers.Flux2Transformer2DModel, {}),
                "qwen_image": (diffusers.QwenImageTransformer2DModel, QWEN_CONFIG)}[model_name]
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("meta"):
            m = cls(**cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    return m.to_empty(device="cuda").eval()


def param_for(params, initializer):
    """The parameter an initializer name denotes: the name itself, or without leading wrapper prefixes ('m.')."""
    name = initializer
    while True:
        if name in params:
            return name
        if "." not in name:
            return None
        name = name.split(".", 1)[1]


def entry_block(entry, box, torch, chunk=1 << 25):
    """E[box] as float32 on the GPU, E the entry's values (fp8: e4m3 code x per-channel scale; bf16 and raw: as stored)."""
    fills = {f["section"]: f for f in entry["fills"]}
    shape = entry["shape"]
    strides = [int(np.prod(shape[j + 1:], dtype=np.int64)) for j in range(len(shape))]
    dims = [b - a for a, b in box]
    out = torch.empty(dims, dtype=torch.float32, device="cuda")
    inner = int(np.prod(dims[1:], dtype=np.int64)) if len(dims) > 1 else 1
    rows_per = max(1, chunk // max(inner, 1))
    # Flat index of every element of the box past its first axis (the same for each row).
    rest = torch.zeros((), dtype=torch.int64, device="cuda")
    for j in range(1, len(dims)):
        ar = torch.arange(box[j][0], box[j][1], dtype=torch.int64, device="cuda") * strides[j]
        rest = rest.unsqueeze(-1) + ar
    section = "codes" if entry["kind"] in ("fp8", "bf16") else "data"
    if entry["kind"] not in ("fp8", "bf16", "raw"):
        raise SystemExit(f"weight '{entry['name']}': kind {entry['kind']} is not mirrored (fp8, bf16, raw)")
    f = fills[section]
    for a in range(0, dims[0] if dims else 1, rows_per):
        b = min(a + rows_per, dims[0]) if dims else 1
        rows = torch.arange(box[0][0] + a, box[0][0] + b, dtype=torch.int64, device="cuda") if dims else torch.zeros(1, dtype=torch.int64, device="cuda")
        index = rows.view([-1] + [1] * (len(dims) - 1)) * (strides[0] if dims else 0) + rest
        vals = stored_values(index, f, torch).float()
        if entry["kind"] == "fp8":
            scale = stored_values(rows, fills["scales"], torch).float()
            vals = vals * scale.view([-1] + [1] * (len(dims) - 1))
        if dims:
            out[a:b] = vals
        else:
            out.copy_(vals.reshape(()))
    return out


def check_samples(entry, torch):
    """The torch draws of an entry at the sample indices vs the CPU mirror's bits."""
    fills = {f["section"]: f for f in entry["fills"]}
    bad = []
    for section, index, bits in entry["samples"]:
        f = fills[section]
        got = int(stored_bits(fill_values(torch.tensor([index], dtype=torch.int64, device="cuda"), f["seed"], f["scale"], f["offset0"]), f["kind"]).item()) if f["kind"] != FILL_ZERO else 0
        if got != bits:
            bad.append((entry["name"], section, index, bits, got))
    return bad


def load_weights(m, plan, model_name, torch):
    params = dict(m.named_parameters())
    done, unsourced, bad = set(), [], []
    rope = {}
    t0 = time.time()
    with torch.no_grad():
        for entry in plan["entries"]:
            bad += check_samples(entry, torch)
            if entry.get("unsourced"):
                if model_name == "qwen_image" and re.search(r"/(cos|sin)[01]$", entry["name"]):
                    rope[entry["name"][-4:]] = entry_block(entry, [[0, d] for d in entry["shape"]], torch)
                    continue
                unsourced.append(f"{entry['name']}: {entry['unsourced']}")
                continue
            for s in entry.get("sources", []):
                name = param_for(params, s["initializer"])
                if name is None:
                    raise SystemExit(f"initializer '{s['initializer']}' (weight '{entry['name']}'): no parameter of {type(m).__name__} has that name")
                p = params[name]
                block = entry_block(entry, s["box"], torch).permute(*s["perm"]).reshape(s["shape"])
                if list(p.shape) != list(block.shape):
                    raise SystemExit(f"parameter '{name}' [{list(p.shape)}] vs its source block [{list(block.shape)}]")
                p.copy_(block)
                done.add(name)
                del block
    if bad:
        raise SystemExit(f"{len(bad)} torch draws differ from the CPU mirror, e.g. {bad[:3]}")
    if unsourced:
        raise SystemExit("learned entries without sources: " + "; ".join(unsourced[:5]))
    missing = sorted(set(params) - done)
    with torch.no_grad():
        for name in missing:
            params[name].zero_()
    torch.cuda.synchronize()
    print(f"weights: {len(done)} of {len(params)} parameters from {len(plan['entries'])} entries in {time.time() - t0:.1f} s"
          + (f"; not sourced (zeroed): {missing}" if missing else ""), flush=True)
    return rope, missing


def use_rope_tables(m, rope, torch):
    """Qwen-Image: the compiled model's drawn RoPE tables in diffusers' attention (see the header)."""
    import diffusers.models.transformers.transformer_qwenimage as tq

    def table_rope(x, freqs):
        cos, sin = freqs
        x_real, x_imag = x.reshape(*x.shape[:-1], -1, 2).unbind(-1)
        x_rot = torch.stack([-x_imag, x_real], dim=-1).flatten(3)
        return (x.float() * cos[None, :, None, :] + x_rot.float() * sin[None, :, None, :]).to(x.dtype)

    if sorted(rope) != ["cos0", "cos1", "sin0", "sin1"]:
        raise SystemExit(f"Qwen-Image RoPE tables: expected cos0/sin0/cos1/sin1, found {sorted(rope)}")
    tq.ROPE_PER_DEVICE["cuda"] = table_rope
    tables = ((rope["cos1"], rope["sin1"]), (rope["cos0"], rope["sin0"]))
    m.pos_embed.forward = lambda *a, **k: tables


# ---- inputs ----------------------------------------------------------------------------------------
def make_inputs(model_name, seed, text_valid=256, grid=(64, 64)):
    """The graph's inputs as numpy (floats rounded to bf16 and stored as float32). Qwen-Image: the first
    `text_valid` of the 256 text tokens kept by encoder_hidden_states_mask, the rest padding. `grid`: the
    image's token rows x columns (1024 x 1024: 64 x 64; an image of W x H: H / 16 x W / 16)."""
    import torch
    g = torch.Generator().manual_seed(seed)
    bf = lambda *shape: torch.randn(*shape, generator=g).to(torch.bfloat16).float().numpy()
    h, w = grid
    if model_name == "flux2_dev":
        L = 512
        img_ids = torch.cartesian_prod(torch.arange(1), torch.arange(h), torch.arange(w), torch.arange(1))[None]
        txt_ids = torch.cartesian_prod(torch.arange(1), torch.arange(1), torch.arange(1), torch.arange(L))[None]
        return dict(hidden_states=bf(1, h * w, 128), encoder_hidden_states=bf(1, L, 15360),
                    timestep=np.array([0.75], np.float32), img_ids=img_ids.numpy().astype(np.int64),
                    txt_ids=txt_ids.numpy().astype(np.int64), guidance=np.array([4.0], np.float32))
    return dict(hidden_states=bf(1, h * w, 64), encoder_hidden_states=bf(1, 256, 3584),
                encoder_hidden_states_mask=(np.arange(256) < text_valid).astype(np.int64)[None], timestep=np.array([0.75], np.float32))


def forward(m, model_name, x, torch, grid=(64, 64)):
    t = {k: torch.from_numpy(v).cuda() for k, v in x.items()}
    for k in t:
        if t[k].dtype == torch.float32:
            t[k] = t[k].to(torch.bfloat16)
    with torch.no_grad():
        if model_name == "flux2_dev":
            return m(**t, return_dict=False)[0]
        return m(**t, img_shapes=[(1, *grid)], return_dict=False)[0]


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("inputs"); a.add_argument("model", choices=["flux2_dev", "qwen_image"]); a.add_argument("--out", required=True); a.add_argument("--seed", type=int, default=43)
    a.add_argument("--text-valid", type=int, default=256, help="qwen_image: text tokens the mask keeps (the rest padding)")
    c = sub.add_parser("compare"); c.add_argument("model", choices=["flux2_dev", "qwen_image"]); c.add_argument("--fills", required=True)
    c.add_argument("--inputs", required=True); c.add_argument("--compiled", required=True); c.add_argument("--out")
    t = sub.add_parser("self-test"); t.add_argument("checks"); t.add_argument("--backend", choices=["numpy", "torch"], default="torch")
    args = ap.parse_args()

    if args.cmd == "self-test":
        checks = json.load(open(args.checks))["checks"]
        bad = self_test(checks, args.backend)
        print(json.dumps({"checks": len(checks), "mismatches": len(bad), "first": bad[:5], "backend": args.backend}))
        return 1 if bad else 0

    if args.cmd == "inputs":
        os.makedirs(args.out, exist_ok=True)
        for k, v in make_inputs(args.model, args.seed, args.text_valid).items():
            np.save(os.path.join(args.out, f"input_{k}.npy"), v)
        print(f"inputs for {args.model} (seed {args.seed}) -> {args.out}")
        return 0

    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    plan = json.load(open(args.fills))
    x = {f[len("input_"):-4]: np.load(os.path.join(args.inputs, f)) for f in sorted(os.listdir(args.inputs)) if f.startswith("input_") and f.endswith(".npy")}
    t0 = time.time()
    m = build(args.model, torch)
    print(f"{args.model}: built in {time.time() - t0:.1f} s", flush=True)
    rope, missing = load_weights(m, plan, args.model, torch)
    if args.model == "qwen_image":
        use_rope_tables(m, rope, torch)
    torch.cuda.reset_peak_memory_stats()
    t1 = time.time()
    out = forward(m, args.model, x, torch).float()
    torch.cuda.synchronize()
    ref = out.double().cpu().numpy().reshape(-1)
    got = np.load(args.compiled).astype(np.float64).reshape(-1)
    if got.size != ref.size:
        raise SystemExit(f"{args.compiled}: {got.size} values, diffusers' output has {ref.size}")
    d = got - ref
    res = dict(model=args.model, device=torch.cuda.get_device_name(), torch=torch.__version__, seed=plan["seed"],
               compiled_precision=plan.get("precision"), rel_l2=float(np.linalg.norm(d) / np.linalg.norm(ref)),
               cosine=float(got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref))), max_abs=float(np.abs(d).max()),
               rms_diffusers=float(np.sqrt((ref ** 2).mean())), rms_compiled=float(np.sqrt((got ** 2).mean())),
               finite_compiled=float(np.isfinite(got).mean()), forward_s=time.time() - t1,
               peak_gib=torch.cuda.max_memory_allocated() / 2 ** 30, unsourced_params=missing)
    print(json.dumps(res), flush=True)
    if args.out:
        json.dump(res, open(args.out, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
