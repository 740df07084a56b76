/**
 * FP8 P·V (pv='fp8', the default policy's where Q·Kᵀ is FP8 and the mask allows) on the CPU machine: the lowering (pack, V
 * quantization, packed attention), the reference semantics (V in e4m3 per head and channel, P in
 * e4m3 per key tile of the online softmax; with a key mask, the dropped keys' V is 0 and sets no
 * scale) agreeing between FusedAttention, the lowered ops and the GPU test's AttentionReference, the
 * Vt8 layout (64-byte swizzled rows, the key permutation the kernel's P registers need), the policy,
 * and the nvcc build of the kernels for both targets without spills. The kernels' numerics are
 * checked on the GPU (test/gpu/attention.ts, the *_fp8pv cases).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attentionDescriptor, attentionSharedBytes, packDescriptor, renderAttention, renderVQuant, vquantDescriptor } from '../compiler/codegen/attention.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pvTile, pvWeights, quantizeChannels } from '../compiler/ops/fused.ts';
import { swizzled64, vt8Byte, vt8Key } from '../compiler/ops/packed-attention.ts';
import { lookupOp } from '../compiler/ops/registry.ts';
import { fp8Reciprocal, roundE4M3, roundE4M3Scaled } from '../compiler/quant/formats.ts';
import { lowerAttention } from '../passes/lower-attention.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy, fp8PvAttention, loadPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { AttentionReference } from './gpu/attention-reference.ts';
import { expectBuildsWithoutSpills, loweredOf, ops, random, referenceOutput, throughViews } from './helpers/attention.ts';
import { relL2 } from './helpers/numerics.ts';
import { policyFile } from './helpers/policy.ts';

/** The policy "fp8-pv": e4m3 Q·Kᵀ and P·V (the default of sessions 18-41). */
const FP8_PV = { ...defaultPolicy('fp8'), attention: 'fp8-pv' as const };

/** The fp8 pipeline of "fp8-pv" up to lower-attention, every attention it would give FP8 P·V if it were
 * long enough (no mask or a key mask; the tiny models' attention is too short) forced to qk+pv fp8,
 * then lowered. */
function compileTiny(name: string) {
  const passes = pipelineFor(insertQuantize(FP8_PV));
  const before = runPipeline(inferTypes(specialise(importOnnx(join(tinyDir(name), 'model.onnx')).graph, {})), { passes: passes.filter((p) => p !== lowerAttention) });
  for (const n of before.graph.nodes) {
    if (n.op !== 'FusedAttention') continue;
    const shape = n.inputs[0] ? (before.graph.types.get(n.inputs[0]) as unknown as { shape: number[] }).shape : undefined;
    if (fp8PvAttention(FP8_PV, { causal: n.attrs.causal === 1, queries: 4096, keys: 4096, convolves: false, masked: !!shape, maskShape: shape })) Object.assign(n.attrs, { qk: 'fp8', pv: 'fp8' });
  }
  return { before: before.graph, after: runPipeline(before, { passes: [lowerAttention] }).graph };
}

const withAttrs = (n: Node, attrs: Node['attrs']): Node => ({ ...n, attrs: { ...n.attrs, ...attrs } });

describe('fp8 P·V semantics', () => {
  it('P weights: e4m3 of 2^(x - m_tile + 8) per 128-key tile, carried to the final max, over the unrounded sum', () => {
    // Two tiles; the second raises the max by 3 (log2 units), so the first tile's P were formed at the old max.
    const n = 200, scores = new Float64Array(n);
    for (let t = 0; t < n; t++) scores[t] = (t < 128 ? 0.01 * t : 0.01 * t + 2) / Math.LOG2E;
    const w = Float64Array.from(scores);
    pvWeights(w, n, 128, 'fp8');
    const m1 = 1.27, m2 = Math.max(m1, 0.01 * 199 + 2);
    let l = 0;
    const p: number[] = [];
    for (let t = 0; t < n; t++) {
      const m = t < 128 ? m1 : m2, x = 2 ** (scores[t] * Math.LOG2E - m + 8);
      l += x * 2 ** (m - m2);
      p.push(roundE4M3(x) * 2 ** (m - m2));
    }
    p.forEach((v, t) => expect(w[t]).toBeCloseTo(v / l, 12));
    // Close to the exact softmax, but really rounded.
    const e = [...scores].map((s) => Math.exp(s - m2 / Math.LOG2E)), sum = e.reduce((a, b) => a + b);
    expect(relL2(w, e.map((x) => x / sum))).toBeLessThan(0.05);
    expect(relL2(w, e.map((x) => x / sum))).toBeGreaterThan(1e-3);
    // A fully masked row gives 0.
    const masked = new Float64Array(130).fill(-Infinity);
    pvWeights(masked, 130, 128, 'fp8');
    expect([...masked].every((x) => x === 0)).toBe(true);
    // In one 192-key tile the second part's max is the tile's from the start: no carry, other roundings.
    const w192 = Float64Array.from(scores);
    pvWeights(w192, n, 192, 'fp8');
    let l192 = 0;
    const p192: number[] = [];
    for (let t = 0; t < n; t++) {
      const m = t < 192 ? Math.max(...[...scores.slice(0, 192)].map((x) => x * Math.LOG2E)) : m2, x = 2 ** (scores[t] * Math.LOG2E - m + 8);
      l192 += x * 2 ** (m - m2);
      p192.push(roundE4M3(x) * 2 ** (m - m2));
    }
    p192.forEach((v, t) => expect(w192[t]).toBeCloseTo(v / l192, 12));
    expect(relL2(w192, w)).toBeGreaterThan(1e-4);
  });

  it('the key tile: 192 where it divides the padded kv length (Flux.2), else 128 (Qwen-Image)', () => {
    expect([4608, 4352, 4600, 384, 280, 256].map(pvTile)).toEqual([192, 128, 192, 192, 192, 128]);
  });

  it('Vt8 rows: 64 bytes with the 64-byte swizzle (chunk c of row r at c ^ (r/2 mod 4)), a bijection on each 512-byte group', () => {
    expect([0, 1, 2, 3, 4, 7].map((r) => swizzled64(r, 0))).toEqual([0, 64, 128 + 16, 192 + 16, 256 + 32, 448 + 48]);
    expect(swizzled64(2, 17)).toBe(128 + 1);
    const seen = new Set<number>();
    for (let r = 0; r < 8; r++) for (let c = 0; c < 64; c++) seen.add(swizzled64(r, c));
    expect(seen.size).toBe(512);
    expect(Math.max(...seen)).toBe(511);
  });

  it('Vt8 keys: byte l of a 16-key chunk holds key 2(l/4) + l%2 + 8((l/2)%2), the accumulator columns of the k32 A fragment', () => {
    const keys = Array.from({ length: 16 }, (_, l) => vt8Key(l));
    expect(keys).toEqual([0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15]);
    for (let p = 0; p < 16; p++) expect(vt8Key(vt8Byte(p))).toBe(p);
    // Thread t4 of a quad holds logical keys 4·t4..4·t4+3 in its A register: S columns 2·t4, 2·t4+1, 8+2·t4, 9+2·t4.
    for (let t4 = 0; t4 < 4; t4++) expect([0, 1, 2, 3].map((i) => vt8Key(4 * t4 + i))).toEqual([2 * t4, 2 * t4 + 1, 8 + 2 * t4, 9 + 2 * t4]);
  });

  it('lowers to pack + AttentionQuantizeV + packed attention, which compute FusedAttention pv=fp8 (not the qk-only result)', () => {
    const { before, after } = compileTiny('flux2');
    const fused = ops(before, 'FusedAttention').find((n) => n.attrs.pv === 'fp8')!;
    const { pack, vq: vqNode, attn } = loweredOf(after, fused), vq = vqNode!;
    expect(attn.attrs.pv).toBe('fp8');
    expect(attn.inputs.slice(1)).toEqual([pack.outputs[0], pack.outputs[1], vq.outputs[0], pack.outputs[3], pack.outputs[4], vq.outputs[1]]);
    const inputs = fused.inputs.map((x, i) => (x ? random(before, x, 300 + i, 2) : undefined));
    const want = (lookupOp(fused)!.exec(inputs, fused)[0] as Tensor).toFloat32();
    const qkOnly = (lookupOp(fused)!.exec(inputs, withAttrs(fused, { pv: 'bf16' }))[0] as Tensor).toFloat32();
    const packed = lookupOp(pack)!.exec([undefined, ...inputs.slice(1)], pack) as Tensor[];
    const [v8, vs] = lookupOp(vq)!.exec([packed[2]], vq) as Tensor[];
    expect([v8.dtype, vs.dtype]).toEqual(['float8e4m3fn', 'float32']);
    const got = (lookupOp(attn)!.exec([undefined, packed[0], packed[1], v8, packed[3], packed[4], vs], attn)[0] as Tensor).toFloat32();
    expect(relL2(got, want)).toBeLessThan(1e-6);
    expect(relL2(want, qkOnly)).toBeGreaterThan(1e-3);
    expect(relL2(want, qkOnly)).toBeLessThan(5e-2);
    // Vt8 decodes to the channel-quantized V: every code times its channel's scale is an e4m3 value times it.
    const [b, hkv, blocks, dp] = v8.shape;
    expect([b * hkv, blocks * 64, dp]).toEqual([vs.shape[0] * vs.shape[1], packed[2].shape[2] * 64, packed[2].shape[3]]);
  });

  it('the GPU test\'s reference (descriptors + AttentionReference) equals FusedAttention pv=fp8 on the same buffers', () => {
    const { before, after } = compileTiny('flux2');
    const fused = ops(before, 'FusedAttention').find((n) => n.attrs.pv === 'fp8')!;
    const { pack, attn } = loweredOf(after, fused);
    const pd = packDescriptor(after, pack), ad = attentionDescriptor(after, attn);
    expect([ad.qk, ad.pv, ad.pvAccumulate, ad.lazyRescale, ad.bn, ad.exp]).toEqual(['fp8', 'fp8', 'direct', true, 192, undefined]);
    const roots = new Map<string, Tensor>();
    pd.inputs.map((x) => x.value).forEach((r, i) => roots.set(r, random(after, r, 11 + i, 1.5)));
    const inputs = fused.inputs.map((x) => (x ? throughViews(before, x, roots) : undefined));
    const want = (lookupOp(fused)!.exec(inputs, fused)[0] as Tensor).toFloat32();
    const reference = new AttentionReference(pd, ad, (v, i) => roots.get(v)!.get(i));
    const got = referenceOutput(reference, ad, want.length);
    expect(relL2(got, want)).toBeLessThan(1e-6);
  });
});

describe('fp8 P·V policy and kernels', () => {
  it('"fp8-pv": FP8 P·V where it takes FP8 Q·Kᵀ, without a mask or with a key mask; "auto" (the default) takes the integer P·V there, "fp8-qk", "fp8" and "int8" keep bf16 P·V', () => {
    const p = FP8_PV;
    expect(loadPolicy(policyFile({ attention: 'fp8-pv' }), 'fp8').attention).toBe('fp8-pv');
    const long = { causal: false, queries: 4608, keys: 4608, convolves: false };
    expect(fp8PvAttention(p, { ...long, masked: false })).toBe(true);
    // Key masks (text padding, batch 1 or 2) yes; a mask with a query or head axis, or of unknown shape, no.
    for (const maskShape of [[1, 1, 1, 4608], [2, 1, 1, 4608], [1, 4608], [4608]]) expect(fp8PvAttention(p, { ...long, masked: true, maskShape }), `[${maskShape}]`).toBe(true);
    for (const maskShape of [[1, 1, 4608, 4608], [1, 24, 1, 4608], [4608, 4608], undefined]) expect(fp8PvAttention(p, { ...long, masked: true, maskShape }), `[${maskShape}]`).toBe(false);
    expect(fp8PvAttention(p, { ...long, causal: true, masked: true, maskShape: [1, 1, 1, 4608] })).toBe(false);
    expect(fp8PvAttention(p, { ...long, causal: true, masked: false })).toBe(false);
    expect(fp8PvAttention(p, { ...long, queries: 512, masked: false })).toBe(false);
    expect(fp8PvAttention({ ...p, format: 'nvfp4' }, { ...long, masked: false })).toBe(false);
    for (const attention of ['auto', 'fp8-qk', 'fp8', 'int8', 'int8-pv', 'bf16'] as const) expect(fp8PvAttention({ ...p, attention }, { ...long, masked: false }), attention).toBe(false);
    expect(loadPolicy(policyFile({ attention: 'fp8-qk' }), 'fp8').attention).toBe('fp8-qk');
    expect(() => loadPolicy(policyFile({ attention: 'pv' }), 'fp8')).toThrow(/"fp8-qk", "fp8-pv"/);
  });

  it('renders e4m3 P·V (register A, K-major Vt8, 16 KB V stages, channel scales in the epilogue, two P arrays in the ping-pong) and the V quantization; builds for sm_90a and sm_100a without spills', async () => {
    const { after } = compileTiny('flux2');
    const ad = attentionDescriptor(after, ops(after, 'PackedAttention').find((n) => n.attrs.pv === 'fp8')!);
    const k = renderAttention({ ...ad, pvAccumulate: 'split' }), direct = renderAttention(ad);
    expect(k.source).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n128k32\.f32\.e4m3\.e4m3 \{[^}]*\}, \{%64, %65, %66, %67\}/);
    expect(k.source).toMatch(/const float\* __restrict__ vs,\s*__nv_bfloat16\* __restrict__ out|const float\* __restrict__ vs,\s*\S+\* __restrict__ out/);
    expect(k.source).toMatch(/float Ot\[DP \/ 2\]/);
    expect(direct.source).not.toMatch(/float Ot\[/);
    // The rescale of O skipped warp-uniformly where no row's max moved (direct accumulation only).
    expect(direct.source).toMatch(/if \(!__all_sync\(0xffffffffu, alpha0 == 1\.f && alpha1 == 1\.f\)\)/);
    expect(renderAttention({ ...ad, pv: undefined, pvAccumulate: undefined, lazyRescale: undefined, pBuffers: undefined, qk: 'fp8', bn: 128 }).source).not.toMatch(/__all_sync/);
    // Two P arrays (the descriptor's choice in the full ping-pong): tiles alternate P0 / P1 in a loop
    // unrolled by two, the last tile's P·V from the array its parity names; one array otherwise.
    expect(ad.pBuffers).toBe(2);
    expect(direct.source).toMatch(/uint32_t P0\[P_REGS\], P1\[P_REGS\];/);
    expect(direct.source).toMatch(/for \(int j = 1; j \+ 1 < nTiles; j \+= 2\)/);
    const oneP = renderAttention({ ...ad, pBuffers: 1 });
    expect(oneP.source).toMatch(/uint32_t P\[P_REGS\];/);
    expect(oneP.source).not.toMatch(/P0\[/);
    expect(oneP.name).not.toBe(direct.name);
    expect(() => renderAttention({ ...ad, pv: undefined, pvAccumulate: undefined, qk: 'fp8' })).toThrow(/two P arrays with 8-bit P·V or 128-key tiles, in the full ping-pong, not causal, found pv='bf16', BN 192/);
    expect(() => renderAttention({ ...ad, schedule: 'serial' })).toThrow(/two P arrays.*schedule 'serial'/);
    expect(direct.name).not.toBe(k.name);
    expect(attentionSharedBytes(ad).v).toBe(192 * ad.dp);
    expect(attentionSharedBytes({ ...ad, bn: 128 }).v).toBe(128 * ad.dp);
    expect(attentionSharedBytes({ ...ad, pv: undefined, bn: 128 }).v).toBe(2 * 128 * ad.dp);
    // Vt8's 64-key blocks: two k32 steps a block through the 64-byte-swizzle descriptor; 3 bulk copies of a 192-key tile.
    expect(direct.source).toMatch(/descV = dca_desc64\(sV\)/);
    expect(direct.source).toMatch(/v \+ \(kk >> 1\) \* DP \* 4 \+ \(kk & 1\) \* 2, 1\)/);
    expect(direct.source.match(/dca_bulk_copy\(sV [^;]*DP \* 64, VFULL\(st\)\)/g)).toHaveLength(3);
    const vq = renderVQuant(vquantDescriptor(after, ops(after, 'AttentionQuantizeV')[0]));
    expect(vq.args).toHaveLength(3);
    // V times fp8Reciprocal(scale) by the preamble's dc_qmul, not one IEEE division a value.
    expect(vq.source).toMatch(/const float a = dc_qmul\(__bfloat162float\(x\[2 \* q\]\), qd\)/);
    expect(vq.source).toMatch(/dca_vt8_chunk<false>\(x, qd\)/);
    expect(vq.source).not.toMatch(/__fdiv_rn\(__bfloat162float/);
    const bn128 = renderAttention({ ...ad, bn: 128, exp: 'poly', polyEvery: 4 });
    const list = [k, direct, oneP, bn128, vq].map(({ args: _, ...x }) => x);
    await expectBuildsWithoutSpills(list, 'pv');
  }, 240_000);
});

describe('fp8 P·V over a key mask (Qwen-Image\'s text padding)', () => {
  /** The tiny Qwen-Image's first attention with its text padding mask (the last 5 text keys dropped),
   * roots drawn at random, garbage of 3e4 in the dropped keys' K and V rows; the mask computed from
   * the padding input through the graph's own nodes. */
  function masked(garbage: number) {
    const { before, after } = compileTiny('qwen_image');
    const fused = ops(before, 'FusedAttention')[0];
    const pdNode = ops(after, 'AttentionPack').find((n) => n.outputs[0].startsWith(`${fused.outputs[0]}/`))!;
    const pd = packDescriptor(after, pdNode);
    const ad = attentionDescriptor(after, ops(after, 'PackedAttention').find((n) => n.outputs[0] === fused.outputs[0])!);
    const text = (after.types.get('encoder_hidden_states') as unknown as { shape: number[] }).shape[1];
    const padding = Tensor.zeros('int64', [1, text]);
    for (let i = 0; i < text; i++) padding.set(i, i < text - 5 ? 1 : 0);
    const roots = new Map<string, Tensor>([['encoder_hidden_states_mask', padding]]);
    pd.inputs.map((x) => x.value).forEach((r, i) => roots.set(r, random(after, r, 21 + i, 1.5)));
    for (const seg of pd.segments.filter((x) => x.role !== 'q' && x.start === 0)) {
      const root = roots.get(pd.inputs[seg.x.param].value)!, [, ss, sh, sd] = seg.x.strides;
      for (let t = text - 5; t < text; t++) for (let h = 0; h < pd.kvHeads; h++) for (let i = 0; i < pd.headDim; i++) root.set(seg.x.offset + t * ss + h * sh + i * sd, garbage * (i % 2 ? 1 : -1));
    }
    const maskValue = throughViews(before, fused.inputs[0], roots);
    roots.set(ad.mask!.value, throughViews(after, ad.mask!.value, roots));
    const inputs = fused.inputs.map((x) => (x ? throughViews(before, x, roots) : undefined));
    return { before, after, fused, pdNode, pd, ad, text, roots, inputs, maskValue };
  }
  const run = (fused: Node, inputs: (Tensor | undefined)[]) => (lookupOp(fused)!.exec(inputs, fused)[0] as Tensor).toFloat32();

  it('dropped keys contribute nothing: garbage of 3e4 in their K and V rows gives the output of zeros there, and sets no V scale', () => {
    const g = masked(3e4), z = masked(0);
    expect(g.fused.attrs.pv).toBe('fp8');
    expect(g.maskValue.shape).toEqual([1, 1, 1, g.ad.seqKv]);
    const want = run(z.fused, z.inputs), got = run(g.fused, g.inputs);
    expect(relL2(got, want)).toBeLessThan(1e-12);
    // FP8 P·V stays close to the FP8 Q·Kᵀ result, which the garbage does not reach either.
    const qkOnly = run(withAttrs(g.fused, { pv: 'bf16' }), g.inputs);
    expect(relL2(got, qkOnly)).toBeGreaterThan(1e-3);
    expect(relL2(got, qkOnly)).toBeLessThan(5e-2);
    // The V quantization: with the mask its scales are those of the garbage-free V; without it, the garbage's.
    const vq = ops(g.after, 'AttentionQuantizeV').find((n) => n.inputs[0] === g.pdNode.outputs[2])!;
    expect(vq.inputs[1]).toBe(g.fused.inputs[0]);
    expect(vq.attrs.seqKv).toBe(g.ad.seqKv);
    const vtOf = (m: typeof g) => (lookupOp(m.pdNode)!.exec([undefined, ...m.inputs.slice(1)], m.pdNode) as Tensor[])[2];
    const scales = (m: typeof g, withMask: boolean) => (lookupOp(vq)!.exec(withMask ? [vtOf(m), m.maskValue] : [vtOf(m)], vq) as Tensor[])[1].toFloat32();
    expect([...scales(g, true)]).toEqual([...scales(z, true)]);
    expect(Math.max(...scales(g, false))).toBeGreaterThan(3e4 / 448 * 0.99);
    // (1: the channels past the head dim, all zero.)
    expect(scales(g, true).filter((x) => x !== 1).length).toBe(g.pd.kvHeads * g.pd.headDim);
    expect(Math.max(...scales(g, true).filter((x) => x !== 1))).toBeLessThan((1.5 / 448) * 1.01);
  });

  it('lowers to pack + AttentionQuantizeV(Vt, mask) + packed attention, equal to FusedAttention pv=fp8; so does the GPU test\'s reference', () => {
    const g = masked(3e4);
    const want = run(g.fused, g.inputs);
    const vq = ops(g.after, 'AttentionQuantizeV').find((n) => n.inputs[0] === g.pdNode.outputs[2])!;
    const attn = ops(g.after, 'PackedAttention').find((n) => n.outputs[0] === g.fused.outputs[0])!;
    const packed = lookupOp(g.pdNode)!.exec([undefined, ...g.inputs.slice(1)], g.pdNode) as Tensor[];
    const [v8, vs] = lookupOp(vq)!.exec([packed[2], g.maskValue], vq) as Tensor[];
    const got = (lookupOp(attn)!.exec([g.maskValue, packed[0], packed[1], v8, packed[3], packed[4], vs], attn)[0] as Tensor).toFloat32();
    expect(relL2(got, want)).toBeLessThan(1e-6);
    // The descriptors: BN 192 (the tiny padded kv length 384), the key-mask V quantization reading the mask's text keys only.
    expect([g.ad.pv, g.ad.bn, g.ad.mask!.keys]).toEqual(['fp8', 192, g.text]);
    const vd = vquantDescriptor(g.after, vq);
    expect([vd.mask?.value, vd.mask?.keys]).toEqual([g.ad.mask!.value, g.text]);
    const reference = new AttentionReference(g.pd, g.ad, (v, i) => g.roots.get(v)!.get(i));
    expect(relL2(referenceOutput(reference, g.ad, want.length), want)).toBeLessThan(1e-6);
  });

  it('refuses FP8 P·V over a mask with a query axis (FusedAttention, PackedAttention and the V quantization say so)', () => {
    const g = masked(0);
    const s = g.ad.seqKv;
    const square = Tensor.zeros('float32', [1, 1, s, s]);
    expect(() => run(g.fused, [square, ...g.inputs.slice(1)])).toThrow(/key mask broadcast over heads and queries/);
    const vq = ops(g.after, 'AttentionQuantizeV')[0];
    const packed = lookupOp(g.pdNode)!.exec([undefined, ...g.inputs.slice(1)], g.pdNode) as Tensor[];
    expect(() => lookupOp(vq)!.exec([packed[2], square], vq)).toThrow(/AttentionQuantizeV node .*key mask/);
  });

  it('renders the masked FP8 P·V kernel and the V quantization reading the mask once into shared memory; both build for sm_90a and sm_100a without spills', async () => {
    const g = masked(0);
    const ak = renderAttention(g.ad);
    const vq = renderVQuant(vquantDescriptor(g.after, ops(g.after, 'AttentionQuantizeV')[0]));
    expect(vq.args).toEqual([ops(g.after, 'AttentionQuantizeV')[0].inputs[0], g.ad.mask!.value, ...ops(g.after, 'AttentionQuantizeV')[0].outputs]);
    expect(vq.source).toMatch(new RegExp(`constexpr int MASK_KEYS = ${g.text};`));
    expect(vq.source).toMatch(/dropped\[t\] = m < -1e37f;/);
    expect(ak.source).toMatch(/dca_desc64/);
    await expectBuildsWithoutSpills([ak, vq].map(({ args: _, ...x }) => x), 'pvmask');
  }, 240_000);
});

describe("V's e4m3 values (compiler/ops/fused.ts quantizeChannels)", () => {
  it('hands out the codes themselves beside code · scale, a subnormal scale included (Vt8 takes them, not code · scale / scale)', () => {
    // One head, one channel of 4 keys: amax 3·2^-133 (bf16 subnormals), so the scale fp32(amax / 448) is subnormal.
    const keys = [3 * 2 ** -133, 2 ** -133, -2 * 2 ** -133, 0];
    const x = Float32Array.from(keys), values = new Float32Array(keys.length);
    const [scale] = quantizeChannels(x, { b: 1, h: 1, s: keys.length, d: 1 }, undefined, undefined, values);
    expect(scale).toBe(Math.fround(3 * 2 ** -133 / 448));
    expect(scale).toBeLessThan(2 ** -126);
    const r = fp8Reciprocal(scale);
    keys.forEach((v, i) => {
      expect(values[i]).toBe(roundE4M3Scaled(v, r));
      expect(x[i]).toBe(Math.fround(values[i] * scale));
    });
    expect([...values]).toEqual([448, 144, -288, 0]);
  });
});
