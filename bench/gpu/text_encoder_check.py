"""The text encoders' real checkpoint layout through `npx compile --weights` (GPU host; transformers installed).

Flux.2 [dev] and Qwen-Image ship their text encoders as vision-language models (Mistral3ForConditionalGeneration,
Qwen2_5_VLForConditionalGeneration), whose checkpoints name the language model under a prefix and hold a vision
tower and an LM head beside it; the bundled exports are the language models alone (../shared/models/export_text_encoders.py:
MistralModel's hidden states 10, 20, 30 stacked; Qwen2Model's last hidden state). This builds the vision-language model
at the text encoder's full config on the GPU with transformers' own (seeded) initialisation, writes it with
save_pretrained, and computes the export's output with the same weights: the export's module (MistralModel / Qwen2Model
at the export's config) loaded with the language model's tensors, on random ids with padding.

  python3 bench/gpu/text_encoder_check.py make mistral|qwen --ckpt DIR --inputs DIR --reference REF.npy
      (also DIR-full / REF-full.npy: the same ids with every token valid)
  sh .gpu/rt/run.sh compile TEXT_ENCODER.onnx --target h100 --weights DIR --out ART
  sh .gpu/rt/run.sh ART --inputs DIR --out OUTDIR
  python3 bench/gpu/checkpoint_check.py compare --reference REF.npy --compiled OUTDIR/output_prompt_embeds.npy
"""
import argparse, json, os, time

import numpy as np
import torch

TEXT = {
    "mistral": dict(vocab_size=131072, hidden_size=5120, intermediate_size=32768, num_hidden_layers=40, num_attention_heads=32,
                    num_key_value_heads=8, head_dim=128, max_position_embeddings=131072, rope_theta=1e9, rms_norm_eps=1e-5),
    "qwen": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                 num_key_value_heads=4, max_position_embeddings=128000, rope_theta=1e6, rms_norm_eps=1e-6),
}
LENGTH = {"mistral": 512, "qwen": 290}
VALID = {"mistral": 77, "qwen": 61}


def vl_model(family):
    import transformers as tf
    text = TEXT[family]
    if family == "mistral":
        cfg = tf.Mistral3Config(text_config=dict(model_type="mistral", **text))
        cls = tf.Mistral3ForConditionalGeneration
    else:
        cfg = tf.Qwen2_5_VLConfig(text_config=dict(model_type="qwen2_5_vl_text", rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}, **text))
        cls = tf.Qwen2_5_VLForConditionalGeneration
    got = cfg.get_text_config()
    assert got.hidden_size == text["hidden_size"] and got.num_hidden_layers == text["num_hidden_layers"], f"text config not taken: {got}"
    return cls(cfg)


def export_output(family, language_model, ids, mask):
    """What the bundled export computes, with the language model's own weights (export_text_encoders.py)."""
    import transformers as tf
    with torch.device("cuda"):
        lm = (tf.MistralModel(tf.MistralConfig(**TEXT[family])) if family == "mistral" else tf.Qwen2Model(tf.Qwen2Config(**TEXT[family]))).eval()
    missing, unexpected = lm.load_state_dict(language_model.state_dict(), strict=False)
    assert not missing, f"export module parameters the language model lacks: {missing[:5]}"
    with torch.no_grad():
        if family == "mistral":
            out = lm(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False)
            h = torch.stack([out.hidden_states[k] for k in (10, 20, 30)], dim=1)
            b, c, l, d = h.shape
            return h.permute(0, 2, 1, 3).reshape(b, l, c * d), unexpected
        return lm(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state, unexpected


def make(args):
    torch.manual_seed(args.seed)
    t0 = time.time()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            m = vl_model(args.family).eval()
        t1 = time.time()
        m.save_pretrained(args.ckpt, safe_serialization=True, max_shard_size="10GB")
        t2 = time.time()
        # The language model: the submodule holding embed_tokens, layers and norm.
        name, language_model = next((n, mod) for n, mod in m.named_modules() if all(hasattr(mod, a) for a in ("embed_tokens", "layers", "norm")))
        L, n = LENGTH[args.family], VALID[args.family]
        g = torch.Generator().manual_seed(43)
        ids = torch.randint(10, TEXT[args.family]["vocab_size"], (1, L), generator=g)
        # Two input sets: the first n tokens valid (the rest padding, as the pipelines pad), and every token valid (-full).
        for suffix, mask in (("", (torch.arange(L) < n).long()[None]), ("-full", torch.ones(1, L, dtype=torch.long))):
            out, unexpected = export_output(args.family, language_model, ids.cuda(), mask.cuda())
            os.makedirs(args.inputs + suffix, exist_ok=True)
            np.save(os.path.join(args.inputs + suffix, "input_input_ids.npy"), ids.numpy().astype(np.int64))
            np.save(os.path.join(args.inputs + suffix, "input_attention_mask.npy"), mask.numpy().astype(np.int64))
            np.save(args.reference.replace(".npy", f"{suffix}.npy"), out.float().cpu().numpy())
        if args.weight_fp8:
            # How much FP8 weights alone move this network: the same module with every Linear weight rounded to
            # e4m3 with one scale per output channel (as the compiled GEMMs hold them), the activations left exact.
            with torch.no_grad():
                for mod in language_model.modules():
                    if isinstance(mod, torch.nn.Linear):
                        w = mod.weight.float()
                        scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 448
                        mod.weight.copy_(((w / scale).to(torch.float8_e4m3fn).float() * scale).to(mod.weight.dtype))
            ref = torch.from_numpy(np.load(args.reference.replace(".npy", "-full.npy"))).double().reshape(-1)
            w8, _ = export_output(args.family, language_model, ids.cuda(), torch.ones(1, L, dtype=torch.long).cuda())
            w8 = w8.double().cpu().reshape(-1)
            print(json.dumps(dict(fp8_weights_only=dict(cosine=float(w8 @ ref / (w8.norm() * ref.norm())), rel_l2=float((w8 - ref).norm() / ref.norm())))), flush=True)
    finally:
        torch.set_default_dtype(torch.float32)
    files = sorted(os.listdir(args.ckpt))
    print(json.dumps(dict(family=args.family, cls=type(m).__name__, language_model=name, params=sum(p.numel() for p in m.parameters()),
                          init_s=round(t1 - t0, 1), save_s=round(t2 - t1, 1), files=files, unused_by_export=len(unexpected),
                          checkpoint_bytes=sum(os.path.getsize(os.path.join(args.ckpt, f)) for f in files),
                          config_rope=json.load(open(os.path.join(args.ckpt, "config.json"))).get("text_config", {}).get("rope_theta"))), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make"); a.add_argument("family", choices=["mistral", "qwen"]); a.add_argument("--ckpt", required=True)
    a.add_argument("--inputs", required=True); a.add_argument("--reference", required=True); a.add_argument("--seed", type=int, default=0)
    a.add_argument("--weight-fp8", action="store_true", help="also: the export's module with FP8 (e4m3, per-channel) weights against the all-valid reference")
    args = ap.parse_args()
    make(args)


if __name__ == "__main__":
    main()
