/**
 * The six full-size exports (structure only, bundled in models/full, read through
 * compiler/full-models.ts): ingest + specialise + simplify leaves every shape static and every op
 * known without reading a weight byte, and flux2_dev's FLOP count agrees with an analytic count of
 * its GEMMs and attention.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { compileModel } from '../compiler/compile.ts';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inferTypes } from '../compiler/ir/infer.ts';
import { symbolicDims } from '../compiler/ir/graph.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { externalReads } from '../compiler/onnx/constants.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { lookupOp } from '../compiler/ops/registry.ts';
import { countFlops } from '../compiler/stats.ts';
import { countLaunches } from '../compiler/launches.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { FULL_MODELS as FULL, fullModelPath } from '../compiler/full-models.ts';

describe('full-size graphs', () => {
  const compiled = new Map<string, ReturnType<typeof runPipeline>>();
  const compile = (name: string) => {
    if (!compiled.has(name)) {
      const { graph } = importOnnx(fullModelPath(name));
      compiled.set(name, runPipeline(inferTypes(specialise(graph, FULL[name]))));
    }
    return compiled.get(name)!;
  };

  it.each(Object.keys(FULL))('%s: static shapes, known ops, no weight bytes read', (name) => {
    const readsBefore = externalReads.count;
    const { graph } = compile(name);
    expect(symbolicDims(graph)).toEqual([]);
    for (const [value, type] of graph.types) {
      expect(type.kind === 'tensor' && type.shape.every((d) => typeof d === 'number'), `${value}`).toBe(true);
    }
    for (const node of graph.nodes) expect(lookupOp(node), node.op).toBeDefined();
    expect(graph.nodes.some((n) => ['Constant', 'Identity', 'CastLike', 'SplitToSequence', 'SequenceAt'].includes(n.op))).toBe(false);
    for (const n of graph.nodes) if (n.body) for (const b of n.body.nodes) expect(lookupOp(b), b.op).toBeDefined();
    expect(externalReads.count).toBe(readsBefore);
  });

  it('the default fp8 policy computes Q·Kᵀ and P·V on 8 bits (s8 / u8 codes) in the transformers\' joint attention only, not in the text encoders\' causal attention', () => {
    const qk = (name: string) => {
      const { graph } = importOnnx(fullModelPath(name));
      const out = runPipeline(inferTypes(specialise(graph, FULL[name])), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
      const attention = out.nodes.filter((n) => n.op === 'PackedAttention'); // FusedAttention, lowered (lower-attention)
      return [attention.length, attention.filter((n) => n.attrs.qk === 'int8' && n.attrs.pv === 'int8').length];
    };
    expect(qk('flux2_dev')).toEqual([56, 56]);
    expect(qk('qwen_image')).toEqual([60, 60]);
    expect(qk('mistral_small_3_1_text_encoder')).toEqual([30, 0]);
    expect(qk('flux2_vae_decoder')).toEqual([0, 0]); // its mid-block attention runs as GEMM attention (lower-attention), in bf16
  }, 120_000);

  it('flux2_dev FLOPs match an analytic count of its GEMMs and attention within 1%', () => {
    // Flux.2 [dev]: hidden D = 6144 (48 heads x 128), MLP width 3D with SwiGLU, 8 double-stream and
    // 48 single-stream blocks, 4096 image + 512 text tokens, in_channels 128, text width 15360.
    const D = 6144, img = 4096, txt = 512, N = img + txt, mlp = 3 * D;
    const double = 2 * N * D * (3 * D) + 2 * N * D * D + 2 * N * D * (2 * mlp) + 2 * N * mlp * D; // per token stream sum
    const single = 2 * N * D * (3 * D + 2 * mlp) + 2 * N * (D + mlp) * D;
    const attention = 2 * (2 * N * N * D); // QKᵀ and P·V over all heads
    const embed = 2 * img * 128 * D + 2 * txt * 15360 * D + 2 * img * D * 128;
    const analytic = 8 * (double + attention) + 48 * (single + attention) + embed;
    const counted = countFlops(compile('flux2_dev').graph);
    expect(Math.abs(counted - analytic) / analytic).toBeLessThan(0.01);
    expect(counted / 1e12).toBeGreaterThan(280);
    expect(counted / 1e12).toBeLessThan(286);
  });

  it('fuse-attention: one FusedAttention per attention layer, no softmax or norm maths left outside', () => {
    const counts: Record<string, number> = { flux2_dev: 56, qwen_image: 60, mistral_small_3_1_text_encoder: 30, qwen2_5_vl_7b_text_encoder: 28 };
    for (const [name, expected] of Object.entries(counts)) {
      const { graph } = compile(name);
      const fused = graph.nodes.filter((n) => n.op === 'FusedAttention');
      expect(fused, name).toHaveLength(expected);
      const loose = graph.nodes.filter((n) => ['Softmax', 'Pow', 'ReduceMean', 'MatMul'].includes(n.op));
      expect(loose.map((n) => n.op), name).toEqual(name.includes('text_encoder') ? ['MatMul'] : []); // the RoPE frequency outer product
    }
    // Flux.2 joint attention: text + image segments with the QK RMSNorm and RoPE absorbed.
    const flux = compile('flux2_dev').graph.nodes.filter((n) => n.op === 'FusedAttention');
    expect(flux.filter((n) => n.attrs.segments === 2)).toHaveLength(8);
    expect(flux.every((n) => n.inputs[4] && n.inputs[6])).toBe(true); // qNorm and cos of segment 0
    // Qwen-Image: the text padding mask is honoured.
    expect(compile('qwen_image').graph.nodes.filter((n) => n.op === 'FusedAttention').every((n) => n.inputs[0])).toBe(true);
    // Text encoders: causal + padding mask, grouped-query heads.
    const mistral = compile('mistral_small_3_1_text_encoder').graph.nodes.filter((n) => n.op === 'FusedAttention');
    expect(mistral.every((n) => n.inputs[0] && n.attrs.heads === 32 && n.attrs.kvHeads === 8)).toBe(true);
  });

  it('flux2_dev launches per block and memory plan meet their goals', () => {
    const { graph } = compile('flux2_dev');
    const launches = countLaunches(graph);
    const double = launches.kinds.find((k) => k.kind === 'transformer_blocks')!;
    const single = launches.kinds.find((k) => k.kind === 'single_transformer_blocks')!;
    expect(double.blocks).toBe(8);
    expect(single.blocks).toBe(48);
    expect(double.max).toBeLessThanOrEqual(20);
    expect(single.max).toBeLessThanOrEqual(8);
    const memory = planMemory(graph);
    expect(memory.arenaBytes).toBeLessThanOrEqual(1.1 * memory.maxLiveBytes);
    expect(memory.arenaBytes).toBeLessThanOrEqual(1.5e9);
    expect(memory.maxLiveBytes).toBeGreaterThan(500e6); // the single-stream fused projection alone is 509 MB
  });

  it('a structure-only export compiles to an artifact without weights.bin, saying why', async () => {
    const out = mkdtempSync(join(tmpdir(), 'full-'));
    const s = await compileModel({ model: fullModelPath('flux2_vae_decoder'), out, build: false });
    expect(s.weights).toBeNull();
    expect(existsSync(join(out, 'weights.bin'))).toBe(false);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).weights.absent).toMatch(/structure only/);
  });

  // Issue 5: every generated kernel of both transformers at 1024x1024 builds with nvcc for both
  // targets at each target's default precision (FP8 on h100, NVFP4 on b200) with no spill in a hot
  // kernel (the build fails otherwise). The b200 build spilled once unnoticed: this catches it.
  it.each([
    ['flux2_dev', 'h100'], ['flux2_dev', 'b200'], ['qwen_image', 'h100'], ['qwen_image', 'b200'],
  ] as const)('%s builds for %s with no spill in a hot kernel', async (name, target) => {
    const out = mkdtempSync(join(tmpdir(), `full-build-${name}-${target}-`));
    const s = await compileModel({ model: fullModelPath(name), target, shape: FULL[name], out });
    // A hot kernel that spills fails compileModel; cold ones (trigonometry tables) may spill on sm_100a.
    expect(s.build!.kernels, `${name} ${target}`).toBeGreaterThan(0);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.launchPlan.filter((l: { kind: string }) => l.kind === 'pending')).toEqual([]);
    if (target !== 'h100') return;
    // The default policy (gemm "own", gemmScales "auto"): the own GEMM runs every FP8 GEMM of at
    // least 264 output tiles (the image streams and Flux.2's wide text GEMMs) with its scales in its
    // epilogue, so no kernel reads an own GEMM's weight scales; the thin text GEMMs run as twins in
    // their image-stream GEMM's launch (dc.GroupedGemm), scaled there too; cuBLASLt keeps only
    // Qwen-Image's text input projection (K = 3584, not a multiple of 128).
    type L = { kind: string; node: string; kernel?: string; grid: number; sharedBytes: number; args: { value: string }[]; maps?: { param: number; dtype: string; box: number[] }[] };
    const plan = m.launchPlan as L[];
    const own = plan.filter((l) => l.kind === 'kernel' && l.kernel!.startsWith('gemm8_'));
    expect(own.length, name).toBe(name === 'qwen_image' ? 240 : 144);
    // X, W, Y, Y, xs, ws (, bias); with the residual epilogue (passes/fuse-gemm-residual.ts) then the gate and R; with
    // V's amax (passes/fuse-vquant.ts) then the amax output and, where the attention masks keys, the mask; with the
    // GLU epilogue (passes/fuse-gemm-glu.ts) then Y again (its 32-column map: a box 32 wide).
    const plainGemm = name === 'qwen_image' ? 7 : 6, residualGemm = plainGemm + 2;
    const glu = (l: L) => l.maps!.some((t) => t.dtype === 'bfloat16' && t.box[0] === 32);
    // Tensor maps a GEMM: X, W and Y (3, or 6 with a twin), and with the residual epilogue R's too (4, or 8); with the GLU one Y's second (4).
    const residual = (l: L) => l.maps!.length % 4 === 0 && !glu(l), twin = (l: L) => l.maps!.length === (residual(l) ? 8 : 6);
    const amax = (l: L) => l.args.some((a) => a.value.endsWith('/vamax'));
    const perGemmOf = (l: L) => (residual(l) ? residualGemm : amax(l) ? l.args.length / (twin(l) ? 2 : 1) : plainGemm + (glu(l) ? 1 : 0));
    // The SwiGLUs in the epilogue: Flux.2's 48 single blocks' fused projections and its 8 double blocks' image and text MLP in.
    expect(own.filter(glu).length, name).toBe(name === 'qwen_image' ? 0 : 48 + 8 * 2);
    const grouped = own.filter(twin);
    // V's amax: every attention's V projections (Flux.2: 8 double blocks' text and image GEMMs apart, 48 single
    // blocks'; Qwen-Image: 60 image GEMMs with their text twins, the amax output and the text padding mask each).
    expect(own.filter(amax).length, name).toBe(name === 'qwen_image' ? 60 : 8 * 2 + 48);
    expect(own.filter(amax).map(perGemmOf), name).toEqual(own.filter(amax).map((l) => (name === 'qwen_image' ? plainGemm + 2 : plainGemm + 1 + (glu(l) ? 1 : 0))));
    // Each zeroed by a launch just before it.
    const zeroes = plan.filter((l) => l.kernel?.startsWith('zero_'));
    expect(zeroes.map((z) => plan[plan.indexOf(z) + 1].node), name).toEqual(own.filter(amax).map((l) => l.node));
    // Qwen-Image: every block's four image GEMMs but the last block's out and MLP (its text stream's are unused); Flux.2: the double blocks' out and MLP out.
    expect(grouped.length, name).toBe(name === 'qwen_image' ? 237 : 16);
    // The gated residual adds in the epilogue: every block's attention out and MLP out (Qwen-Image's 60 blocks;
    // Flux.2's 8 double blocks, their text twins beside, and the 48 single blocks' one out projection).
    expect(own.filter(residual).length, name).toBe(name === 'qwen_image' ? 120 : 8 * 2 + 48);
    for (const l of own) expect(l.args.length, l.node).toBe((twin(l) ? 2 : 1) * perGemmOf(l));
    const cublas = plan.filter((l) => l.kind === 'gemm' && (l as unknown as { precision: string }).precision === 'fp8');
    expect(cublas.length, name).toBe(name === 'qwen_image' ? 1 : 0);
    const scaleReaders = (p: L[]) => p.filter((l) => l.kind === 'kernel' && !l.kernel!.startsWith('gemm8_') && l.args.some((a) => a.value.endsWith('/ws') && a.value !== `${l.node}/ws`));
    const ownWeightScales = new Set(own.flatMap((l) => (l.args.length === 2 * perGemmOf(l) ? [l.args[5], l.args[perGemmOf(l) + 5]] : [l.args[5]]).map((a) => a.value)));
    for (const l of scaleReaders(plan)) expect(l.args.filter((a) => ownWeightScales.has(a.value)), l.node).toEqual([]);
    // Neither defers a GEMM now: Qwen-Image's text input projection (cuBLASLt) is the first block's text residual,
    // which the residual epilogue (a GEMM) reads as plain values (compiler/codegen/dequant.ts: a reader of kind 'other').
    expect(scaleReaders(plan), name).toEqual([]);
    // With cuBLASLt (deferred scales), the row-kernel ring rule (render.ts RING_FEATURE_BYTES):
    // Qwen-Image's GELU+Quantize readers of the MLP's deferred GEMM (96 KB of scales and biases a
    // row) run without the ring at <= 2 CTAs an SM; Flux.2's SwiGLU readers (147 KB of scales, no
    // bias) keep theirs. (The launch plan only: no build.)
    const policy = join(out, '..', `${name}-cublaslt.json`);
    writeFileSync(policy, JSON.stringify({ gemm: 'cublaslt' }));
    const cub = mkdtempSync(join(tmpdir(), `full-plan-${name}-cublaslt-`));
    await compileModel({ model: fullModelPath(name), target, shape: FULL[name], out: cub, policy, build: false });
    const readers = scaleReaders(JSON.parse(readFileSync(join(cub, 'manifest.json'), 'utf8')).launchPlan as L[]).filter((l) => l.node.endsWith('/xq'));
    if (name === 'qwen_image') {
      // (Launched in pairs, image and text stream as one segmented kernel: passes/fuse-horizontal.ts.)
      const bias = (l: L) => l.args.filter((a) => /mlp\.net\.0\.proj\.bias$/.test(a.value)).length;
      const gelu = readers.filter((l) => bias(l) > 0);
      expect(gelu.reduce((n, l) => n + bias(l), 0)).toBe(119); // 60 image-stream MLPs, 59 text-stream ones (the last block's text output is unused)
      for (const l of gelu) expect([l.sharedBytes, l.grid <= 2 * 132], l.node).toEqual([0, true]);
    } else {
      // x, xs, ws, q, scale: alone, or twice where the image and text streams' run as one segmented kernel.
      const swiglu = readers.filter((l) => [5, 10].includes(l.args.length) && l.grid === 132);
      expect(swiglu.length).toBeGreaterThanOrEqual(8);
      for (const l of swiglu) expect(l.sharedBytes, l.node).toBeGreaterThan(0);
    }
  }, 600_000);

  // Issue 7: Qwen-Image's two true-CFG passes as one batch-2 pass (compiler/ir/rebatch.ts). The
  // batch-2 graph fuses as batch 1 does: every attention packs its text and image segments (the
  // B·H fold of the K transpose traced through), the modulation stays one weight-only GEMV, and
  // the plan has no more launches than one batch-1 pass.
  it('qwen_image at --batch 2 builds for h100 with the launches of one batch-1 pass', async () => {
    const outs = [1, 2].map((b) => mkdtempSync(join(tmpdir(), `full-qwen-b${b}-`)));
    const [one, two] = await Promise.all([1, 2].map((batch, i) =>
      compileModel({ model: fullModelPath('qwen_image'), target: 'h100', shape: FULL.qwen_image, batch, out: outs[i], build: batch === 2 })));
    expect(two.shapes.hidden_states).toBe('bfloat16[2,4096,64]');
    expect(two.launches).toBeLessThanOrEqual(one.launches);
    type L = { kind: string; node: string; kernel?: string; args: { value: string }[] };
    const plan = JSON.parse(readFileSync(join(outs[1], 'manifest.json'), 'utf8')).launchPlan as L[];
    expect(plan.filter((l) => l.kind === 'pending')).toEqual([]);
    const graph = readFileSync(join(outs[1], 'graph.txt'), 'utf8');
    expect(graph.match(/= dc\.AttentionPack\(.*segments=2/g)?.length).toBe(60);
    expect(graph.match(/= dc\.WQLinear\(/g)?.length).toBe(1);
  }, 600_000);

  // Issue 7: Qwen-Image's static 256-token text re-specialised to 64 (compiler/ir/resequence.ts), as a
  // pipeline's textLengths compiles it: the same fusions (60 two-segment attention packs over 64 + 4096
  // tokens, one modulation GEMV), the same launches, fewer FLOPs, built for h100 with no pending launch.
  it('qwen_image at --text-length 64 builds for h100 with the structure of the 256-token export', async () => {
    const outs = [256, 64].map((t) => mkdtempSync(join(tmpdir(), `full-qwen-t${t}-`)));
    const [full, short] = await Promise.all([undefined, 64].map((textLength, i) =>
      compileModel({ model: fullModelPath('qwen_image'), target: 'h100', shape: FULL.qwen_image, textLength, out: outs[i], build: i === 1 })));
    expect([short.shapes.encoder_hidden_states, short.shapes.encoder_hidden_states_mask, short.shapes.hidden_states]).toEqual(['bfloat16[1,64,3584]', 'int64[1,64]', 'bfloat16[1,4096,64]']);
    expect(short.launches).toBe(full.launches);
    expect(short.fusedAttention).toBe(60);
    expect(short.flops).toBeLessThan(0.97 * full.flops);
    type L = { kind: string; node: string };
    expect((JSON.parse(readFileSync(join(outs[1], 'manifest.json'), 'utf8')).launchPlan as L[]).filter((l) => l.kind === 'pending')).toEqual([]);
    const graph = readFileSync(join(outs[1], 'graph.txt'), 'utf8');
    expect(graph.match(/= dc\.AttentionPack\(.*segments=2/g)?.length).toBe(60);
    expect(graph.match(/= dc\.WQLinear\(/g)?.length).toBe(1);
  }, 600_000);

  // Qwen-Image's static 64 x 64 token grid re-specialised (compiler/ir/resize.ts) to 1184x880: a 55 x 74 grid, 4070 image
  // tokens, a multiple of no tile (partial GEMM row tiles, a partial last query and key tile), as a pipeline's sizes compile it:
  // the same fusions and launches, FLOPs in proportion, built for h100 with no pending launch; its VAE decoder too.
  it('qwen_image and its VAE decoder at --size 1184x880 build for h100 with the structure of the 1024x1024 export', async () => {
    const outs = ['1024x1024', '1184x880'].map((s) => mkdtempSync(join(tmpdir(), `full-qwen-${s}-`)));
    const [square, odd] = await Promise.all([undefined, '1184x880'].map((size, i) =>
      compileModel({ model: fullModelPath('qwen_image'), target: 'h100', shape: FULL.qwen_image, size, out: outs[i], build: i === 1 })));
    expect([odd.shapes.hidden_states, odd.shapes.encoder_hidden_states]).toEqual(['bfloat16[1,4070,64]', 'bfloat16[1,256,3584]']);
    expect(odd.launches).toBe(square.launches);
    expect(odd.fusedAttention).toBe(60);
    expect(odd.flops / square.flops).toBeGreaterThan(0.98 * (4070 + 256) / (4096 + 256));
    expect(odd.flops).toBeLessThan(square.flops);
    type L = { kind: string; node: string };
    expect((JSON.parse(readFileSync(join(outs[1], 'manifest.json'), 'utf8')).launchPlan as L[]).filter((l) => l.kind === 'pending')).toEqual([]);
    expect(readFileSync(join(outs[1], 'graph.txt'), 'utf8').match(/= dc\.AttentionPack\(.*segments=2/g)?.length).toBe(60);
    const vae = mkdtempSync(join(tmpdir(), 'full-qwen-vae-1184x880-'));
    const v = await compileModel({ model: fullModelPath('qwen_image_vae_decoder'), target: 'h100', size: '1184x880', out: vae });
    expect(v.shapes.latents).toBe('bfloat16[1,16,1,110,148]');
    expect((JSON.parse(readFileSync(join(vae, 'manifest.json'), 'utf8')).launchPlan as L[]).filter((l) => l.kind === 'pending')).toEqual([]);
  }, 600_000);

  it('a symbolic dim left unbound is named in the error', () => {
    const { graph } = importOnnx(fullModelPath('flux2_dev'));
    expect(() => inferTypes(specialise(graph, { img_tokens: 4096 }))).toThrow(/txt_tokens/);
  });
});
