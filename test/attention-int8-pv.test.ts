/**
 * P·V on 8-bit integers (pv='int8' with qk='int8', policy attention "int8-pv") on the CPU machine: the semantics (P as u8
 * codes of 255·2^(x - m) against a running max held at integers, V as s8 codes per head and channel), the lowering
 * (pack, s8 V quantization, packed attention) agreeing with FusedAttention and with the GPU test's AttentionReference, its
 * error against full precision below FP8 P·V's, the policy, and the kernels: u8 x s8 tensor-core instructions, s32 sums
 * shifted where a max moves, built for sm_90a and sm_100a without spills. The kernels' numerics are checked on the GPU
 * (test/gpu/attention.ts, the *_int8pv cases).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attentionDescriptor, packDescriptor, renderAttention, renderVQuant, vquantDescriptor } from '../compiler/codegen/attention.ts';
import { FULL_MODELS, fullModelPath } from '../compiler/full-models.ts';
import { roundToBf16, roundToF16 } from '../compiler/ir/dtype.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import type { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pvWeights, quantizeChannels } from '../compiler/ops/fused.ts';
import { lookupOp } from '../compiler/ops/registry.ts';
import { rne } from '../compiler/quant/formats.ts';
import { lowerAttention } from '../passes/lower-attention.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy, int8Attention, int8PvAttention, loadPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { AttentionReference } from './gpu/attention-reference.ts';
import { expectBuildsWithoutSpills, loweredOf, ops, random, referenceOutput, throughViews } from './helpers/attention.ts';
import { relL2 } from './helpers/numerics.ts';
import { policyFile } from './helpers/policy.ts';

/** The fp8 pipeline up to lower-attention, the tiny model's unmasked attention forced to `attrs` (too short for the
 * policy), then lowered. */
function compileTiny(name: string, attrs: Node['attrs'] = { qk: 'int8', pv: 'int8' }) {
  const passes = pipelineFor(insertQuantize({ ...defaultPolicy('fp8'), attention: 'int8-pv' }));
  const before = runPipeline(inferTypes(specialise(importOnnx(join(tinyDir(name), 'model.onnx')).graph, {})), { passes: passes.filter((p) => p !== lowerAttention) });
  for (const n of before.graph.nodes) if (n.op === 'FusedAttention' && !n.inputs[0] && n.attrs.causal !== 1) Object.assign(n.attrs, attrs);
  return { before: before.graph, after: runPipeline(before, { passes: [lowerAttention] }).graph };
}

const withAttrs = (n: Node, attrs: Node['attrs']): Node => ({ ...n, attrs: { ...n.attrs, ...attrs } });
const run = (n: Node, inputs: (Tensor | undefined)[]) => (lookupOp(n)!.exec(inputs, n)[0] as Tensor).toFloat32();

describe('int8 P·V semantics', () => {
  it('P weights: u8 codes of 255·2^(x - m) with m the running max rounded up to an integer, carried to the final m by powers of two, coded and summed from their f16 values', () => {
    // Two tiles of 4 keys (log2 units x = score·log2e). Tile 0's max 1.3 sets m = 2; tile 1's 3.5 moves it to 4.
    const x = [1.3, 0.2, -1, 0.9, 3.5, 2, -3, 0];
    const scores = Float64Array.from(x, (v) => v / Math.LOG2E);
    pvWeights(scores, 8, 4, 'int8');
    // P' rounded to f16 first (the kernel's pairs): l adds those, and the codes round them.
    const p = x.map((v, t) => roundToF16(255 * 2 ** (v - (t < 4 ? 2 : 4))));
    const l = p.slice(0, 4).reduce((a, b) => a + b) / 4 + p.slice(4).reduce((a, b) => a + b);
    const want = p.map((v, t) => (rne(v) * (t < 4 ? 1 / 4 : 1)) / l);
    want.forEach((w, t) => expect(scores[t], `key ${t}`).toBeCloseTo(w, 12));
    // Every code is an integer of 0..255; the largest is 255 only where the max is an integer.
    expect(p.map(rne).every((c) => Number.isInteger(c) && c >= 0 && c <= 255)).toBe(true);
    expect(rne(p[4])).toBe(180); // 255·2^-0.5 = 180.3
    // The f16 rounding comes first: P' = 3.4995 is 3.5 in f16 (steps of 2^-9 there), coded 4 (ties to even), not 3.
    const tie = Float64Array.from([0, Math.log2(3.4995 / 255)], (v) => v / Math.LOG2E);
    pvWeights(tie, 2, 2, 'int8');
    expect(tie[1] / tie[0]).toBeCloseTo(4 / 255, 12);
    // Masked keys (-inf) weigh 0; a row with every key masked gives 0, not NaN.
    const masked = Float64Array.from([-Infinity, 0.5, -Infinity, 0]);
    pvWeights(masked, 4, 2, 'int8');
    expect([masked[0], masked[2]]).toEqual([0, 0]);
    const none = new Float64Array(4).fill(-Infinity);
    pvWeights(none, 4, 2, 'int8');
    expect([...none]).toEqual([0, 0, 0, 0]);
  });

  it("V in s8: one scale a (head, channel), amax/127 of the bf16 values; codes rounded to nearest even; a key mask's dropped keys 0", () => {
    const keys = [0.5, -1.27, 0.3, 1e-3], x = Float32Array.from(keys), values = new Float32Array(4);
    const [scale] = quantizeChannels(x, { b: 1, h: 1, s: 4, d: 1 }, undefined, undefined, values, 'int8');
    const bf = roundToBf16;
    expect(scale).toBe(Math.fround(bf(1.27) / 127));
    expect([...values]).toEqual(keys.map((k) => Math.max(-127, Math.min(127, rne(Math.fround(bf(k) * Math.fround(1 / scale)))))));
    expect(values[1]).toBe(-127);
    values.forEach((v, t) => expect(x[t]).toBe(Math.fround(v * scale)));
    const dropped = Float32Array.from([0.5, -100, 0.25, 0.125]);
    const [s2] = quantizeChannels(dropped, { b: 1, h: 1, s: 4, d: 1 }, (_b, t) => t !== 1, undefined, undefined, 'int8');
    expect(s2).toBe(Math.fround(0.5 / 127));
    expect(dropped[1]).toBe(0);
  });

  it('lowers to pack + s8 AttentionQuantizeV + packed attention, which compute FusedAttention pv=int8; closer to full precision than pv=fp8', () => {
    const { before, after } = compileTiny('flux2');
    const fused = ops(before, 'FusedAttention').find((n) => n.attrs.pv === 'int8')!;
    const { pack, vq: vqNode, attn } = loweredOf(after, fused), vq = vqNode!;
    expect([vq.attrs.pv, attn.attrs.pv, attn.attrs.qk]).toEqual(['int8', 'int8', 'int8']);
    expect(attn.inputs.slice(1)).toEqual([pack.outputs[0], pack.outputs[1], vq.outputs[0], pack.outputs[3], pack.outputs[4], vq.outputs[1]]);
    const inputs = fused.inputs.map((x, i) => (x ? random(before, x, 300 + i, 2) : undefined));
    const want = run(fused, inputs);
    const packed = lookupOp(pack)!.exec([undefined, ...inputs.slice(1)], pack) as Tensor[];
    const [v8, vs] = lookupOp(vq)!.exec([packed[2]], vq) as Tensor[];
    expect([v8.dtype, vs.dtype]).toEqual(['int8', 'float32']);
    for (let i = 0; i < v8.size; i++) expect(Math.abs(v8.get(i))).toBeLessThanOrEqual(127);
    const got = run(attn, [undefined, packed[0], packed[1], v8, packed[3], packed[4], vs]);
    expect(relL2(got, want)).toBeLessThan(1e-6);
    // Against full precision (no 8-bit rounding anywhere): nearer than FP8 P·V's e4m3 P and V, and not the bf16 P·V result.
    const exact = run(withAttrs(fused, { qk: 'bf16', pv: 'bf16' }), inputs);
    const fp8pv = run(withAttrs(fused, { qk: 'fp8', pv: 'fp8' }), inputs), bf16pv = run(withAttrs(fused, { pv: 'bf16' }), inputs);
    expect(relL2(want, exact)).toBeLessThan(relL2(fp8pv, exact));
    expect(relL2(want, bf16pv)).toBeGreaterThan(1e-3);
    expect(relL2(want, exact)).toBeLessThan(3e-2);
  });

  it("the GPU test's reference (descriptors + AttentionReference) equals FusedAttention pv=int8 on the same buffers", () => {
    const { before, after } = compileTiny('flux2');
    const fused = ops(before, 'FusedAttention').find((n) => n.attrs.pv === 'int8')!;
    const { pack, attn } = loweredOf(after, fused);
    const pd = packDescriptor(after, pack), ad = attentionDescriptor(after, attn);
    expect([ad.qk, ad.pv, ad.pvAccumulate, ad.lazyRescale, ad.pBuffers]).toEqual(['int8', 'int8', 'direct', true, 2]);
    const roots = new Map<string, Tensor>();
    pd.inputs.map((x) => x.value).forEach((r, i) => roots.set(r, random(after, r, 11 + i, 1.5)));
    const inputs = fused.inputs.map((x) => (x ? throughViews(before, x, roots) : undefined));
    const want = run(fused, inputs);
    const got = referenceOutput(new AttentionReference(pd, ad, (v, i) => roots.get(v)!.get(i)), ad, want.length);
    expect(relL2(got, want)).toBeLessThan(1e-6);
  });

  it('is refused where its recipe does not hold: pv=int8 needs qk=int8 (the op, the descriptor and the renderer), direct accumulation', () => {
    const { before, after } = compileTiny('flux2');
    const fused = ops(before, 'FusedAttention').find((n) => n.attrs.pv === 'int8')!;
    const inputs = fused.inputs.map((x, i) => (x ? random(before, x, 300 + i, 2) : undefined));
    expect(() => run(withAttrs(fused, { qk: 'fp8' }), inputs)).toThrow(/pv='int8' with qk='int8'.*found qk='fp8'/s);
    expect(() => run(withAttrs(fused, { pv: 'int4' }), inputs)).toThrow(/pv of 'bf16', 'fp8' or 'int8'.*'int4'/s);
    const ad = attentionDescriptor(after, ops(after, 'PackedAttention').find((n) => n.attrs.pv === 'int8')!);
    expect(() => renderAttention({ ...ad, qk: 'fp8' })).toThrow(/pv='int8' with qk='int8'/);
    expect(() => renderAttention({ ...ad, pvAccumulate: 'split' })).toThrow(/pv='int8' accumulated directly.*pvAccumulate 'split'/s);
    // Its s32 sums hold 2^31 / (255 · 127) = 66311 keys.
    expect(() => renderAttention({ ...ad, seqKv: 66816 })).toThrow(/pv='int8' over at most 66311 keys.*66816 keys/s);
  });
});

describe('int8 P·V policy and kernels', () => {
  it('"int8-pv": s8 Q·Kᵀ where "int8" takes it, P·V on integers there where FP8 P·V would be (no mask or a key mask, not causal)', () => {
    const p = { ...defaultPolicy('fp8'), attention: 'int8-pv' as const };
    const long = { causal: false, queries: 4608, keys: 4608, convolves: false };
    expect(int8Attention(p, long)).toBe(true);
    expect(int8PvAttention(p, { ...long, masked: false })).toBe(true);
    expect(int8PvAttention(p, { ...long, masked: true, maskShape: [2, 1, 1, 4608] })).toBe(true);
    expect(int8PvAttention(p, { ...long, masked: true, maskShape: [1, 1, 4608, 4608] })).toBe(false);
    expect(int8PvAttention(p, { ...long, causal: true, masked: false })).toBe(false);
    expect(int8PvAttention(p, { ...long, queries: 512, masked: false })).toBe(false);
    expect(int8PvAttention({ ...p, attention: 'int8' }, { ...long, masked: false })).toBe(false);
    expect(loadPolicy(policyFile({ attention: 'int8-pv' }), 'fp8').attention).toBe('int8-pv');
    expect(() => loadPolicy(policyFile({ attention: 'int9' }), 'fp8')).toThrow(/"int8" or "int8-pv".*"int9"/s);
  });

  it("renders the models' integer P·V (wgmma .s32.u8.s8 with P from registers, s32 sums shifted where a max moves, s8 V) and builds it for sm_90a and sm_100a without spills", async () => {
    const list = new Map<string, ReturnType<typeof renderAttention>>();
    const attn: { model: string; d: ReturnType<typeof attentionDescriptor> }[] = [];
    for (const m of ['flux2_dev', 'qwen_image']) {
      const passes = pipelineFor(insertQuantize({ ...defaultPolicy('fp8'), attention: 'int8-pv' }));
      const g: Graph = runPipeline(inferTypes(specialise(importOnnx(fullModelPath(m)).graph, FULL_MODELS[m])), { passes }).graph;
      for (const n of g.nodes) {
        if (n.op === 'PackedAttention' && n.attrs.pv === 'int8') { const d = attentionDescriptor(g, n), k = renderAttention(d); attn.push({ model: m, d }); list.set(k.name, k); }
        if (n.op === 'AttentionQuantizeV' && n.attrs.pv === 'int8') { const k = renderVQuant(vquantDescriptor(g, n)); list.set(k.name, k); }
      }
    }
    expect([...new Set(attn.map((a) => a.model))].sort()).toEqual(['flux2_dev', 'qwen_image']);
    // Flux.2: 192-key tiles, two P arrays, its partial last wave as pieces; Qwen-Image: its text mask.
    const flux = attn.find((a) => a.model === 'flux2_dev')!.d, qwen = attn.find((a) => a.model === 'qwen_image')!.d;
    expect([flux.bn, flux.pBuffers, flux.mask]).toEqual([192, 2, undefined]);
    expect(qwen.mask).toBeDefined();
    for (const k of [...list.values()].filter((x) => x.name.startsWith('attn_'))) {
      expect(k.source).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n128k32\.s32\.u8\.s8 \{[^}]*\}, \{%64, %65, %66, %67\}, %68, p;/);
      expect(k.source).toMatch(/mma\.sync\.aligned\.m16n8k32\.row\.col\.s32\.u8\.s8\.s32/);
      expect(k.source).toMatch(/Oi\[i\] = \(uint32_t\)\(\(int\)Oi\[i\] >> sh0\)/);
      expect(k.source).toMatch(/fmaxf\(m0, ceilf\(mx0\)\)/);
      expect(k.source).toMatch(/c\[4 \* kk\] = dca_pack_u8x4_f16\(h0\[0\], h0\[1\]\)/);
      expect(k.source).toMatch(/P0\[i\] = __float_as_uint\(S\[i\]\)/);
      expect(k.source).toMatch(/q0\[0\] = dca_hadd2\(q0\[0\], q0\[\d+\]\)/);
      expect(k.source).toMatch(/O\[i\] = dca_s32_f32\(Oi\[i\]\)/);
      expect(k.source).not.toMatch(/wgmma[^"\n]*e4m3|dca_pack_e4m3x4\(/);
    }
    const vq = [...list.values()].filter((x) => x.name.startsWith('attnvq_'));
    expect(vq.length).toBe(2);
    for (const k of vq) expect(k.source).toMatch(/dc_s8_scale\(__uint_as_float\(amax\[dl\]\)\)[\s\S]*dca_vt8_chunk<true>\(x, qd\)/);
    await expectBuildsWithoutSpills([...list.values()].map(({ args: _, ...x }) => x), 'int8pv');
  }, 300_000);
});
