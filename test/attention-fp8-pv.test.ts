/**
 * FP8 P·V (pv='fp8', policy attention "fp8-pv") on the CPU machine: the lowering (pack, V
 * quantization, packed attention), the reference semantics (V in e4m3 per head and channel, P in
 * e4m3 per 128-key tile of the online softmax) agreeing between FusedAttention, the lowered ops and
 * the GPU test's AttentionReference, the Vt8 layout (the key permutation the kernel's P registers
 * need), the policy, and the nvcc build of the kernels for both targets without spills. The kernels'
 * numerics are checked on the GPU (test/gpu/attention.ts, the *_fp8pv cases).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attentionDescriptor, attentionSharedBytes, packDescriptor, renderAttention, renderVQuant, vquantDescriptor } from '../compiler/codegen/attention.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { fp8PvWeights } from '../compiler/ops/fused.ts';
import { vt8Byte, vt8Key } from '../compiler/ops/packed-attention.ts';
import { lookupOp } from '../compiler/ops/registry.ts';
import { roundE4M3 } from '../compiler/quant/formats.ts';
import { lowerAttention } from '../passes/lower-attention.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy, fp8PvAttention, loadPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { AttentionReference } from './gpu/attention-reference.ts';
import { expectBuildsWithoutSpills, ops, random, referenceOutput, relL2, throughViews } from './helpers/attention.ts';
import { policyFile } from './helpers/policy.ts';

/** The fp8 pipeline up to lower-attention, every unmasked attention forced to qk+pv fp8 (the tiny
 * models' attention is too short for the policy), then lowered. */
function compileTiny(name: string) {
  const passes = pipelineFor(insertQuantize({ ...defaultPolicy('fp8'), attention: 'fp8-pv' }));
  const before = runPipeline(inferTypes(specialise(importOnnx(join(tinyDir(name), 'model.onnx')).graph, {})), { passes: passes.filter((p) => p !== lowerAttention) });
  for (const n of before.graph.nodes) if (n.op === 'FusedAttention' && !n.inputs[0]) Object.assign(n.attrs, { qk: 'fp8', pv: 'fp8' });
  return { before: before.graph, after: runPipeline(before, { passes: [lowerAttention] }).graph };
}

const withAttrs = (n: Node, attrs: Node['attrs']): Node => ({ ...n, attrs: { ...n.attrs, ...attrs } });

describe('fp8 P·V semantics', () => {
  it('P weights: e4m3 of 2^(x - m_tile + 8) per 128-key tile, carried to the final max, over the unrounded sum', () => {
    // Two tiles; the second raises the max by 3 (log2 units), so the first tile's P were formed at the old max.
    const n = 200, scores = new Float64Array(n);
    for (let t = 0; t < n; t++) scores[t] = (t < 128 ? 0.01 * t : 0.01 * t + 2) / Math.LOG2E;
    const w = Float64Array.from(scores);
    fp8PvWeights(w, n);
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
    fp8PvWeights(masked, 130);
    expect([...masked].every((x) => x === 0)).toBe(true);
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
    const pack = ops(after, 'AttentionPack').find((n) => n.outputs[0].startsWith(`${fused.outputs[0]}/`))!;
    const vq = ops(after, 'AttentionQuantizeV').find((n) => n.inputs[0] === pack.outputs[2])!;
    const attn = ops(after, 'PackedAttention').find((n) => n.outputs[0] === fused.outputs[0])!;
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
    expect([b * hkv, blocks * 128, dp]).toEqual([vs.shape[0] * vs.shape[1], packed[2].shape[2] * 64, packed[2].shape[3]]);
  });

  it('the GPU test\'s reference (descriptors + AttentionReference) equals FusedAttention pv=fp8 on the same buffers', () => {
    const { before, after } = compileTiny('flux2');
    const fused = ops(before, 'FusedAttention').find((n) => n.attrs.pv === 'fp8')!;
    const pd = packDescriptor(after, ops(after, 'AttentionPack').find((n) => n.outputs[0].startsWith(`${fused.outputs[0]}/`))!);
    const ad = attentionDescriptor(after, ops(after, 'PackedAttention').find((n) => n.outputs[0] === fused.outputs[0])!);
    expect([ad.qk, ad.pv, ad.pvAccumulate, ad.lazyRescale]).toEqual(['fp8', 'fp8', 'direct', true]);
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
  it('"fp8-pv": FP8 Q·Kᵀ where auto picks it, FP8 P·V only without a mask; not the default', () => {
    const p = { ...defaultPolicy('fp8'), attention: 'fp8-pv' as const };
    const long = { causal: false, queries: 4608, keys: 4608, convolves: false };
    expect(fp8PvAttention(p, { ...long, masked: false })).toBe(true);
    expect(fp8PvAttention(p, { ...long, masked: true })).toBe(false);
    expect(fp8PvAttention(p, { ...long, causal: true, masked: false })).toBe(false);
    expect(fp8PvAttention(p, { ...long, queries: 512, masked: false })).toBe(false);
    expect(fp8PvAttention(defaultPolicy('fp8'), { ...long, masked: false })).toBe(false);
    expect(fp8PvAttention({ ...p, attention: 'fp8' }, { ...long, masked: false })).toBe(false);
    expect(defaultPolicy('fp8').attention).toBe('auto');
    expect(loadPolicy(policyFile({ attention: 'fp8-pv' }), 'fp8').attention).toBe('fp8-pv');
    expect(() => loadPolicy(policyFile({ attention: 'pv' }), 'fp8')).toThrow(/fp8-pv/);
  });

  it('renders e4m3 P·V (register A, K-major Vt8, 16 KB V stages, channel scales in the epilogue) and the V quantization; builds for sm_90a and sm_100a without spills', async () => {
    const { after } = compileTiny('flux2');
    const ad = attentionDescriptor(after, ops(after, 'PackedAttention').find((n) => n.attrs.pv === 'fp8')!);
    const k = renderAttention({ ...ad, pvAccumulate: 'split' }), direct = renderAttention(ad);
    expect(k.source).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n128k32\.f32\.e4m3\.e4m3 \{[^}]*\}, \{%64, %65, %66, %67\}/);
    expect(k.source).toMatch(/const float\* __restrict__ vs,\s*__nv_bfloat16\* __restrict__ out|const float\* __restrict__ vs,\s*\S+\* __restrict__ out/);
    expect(k.source).toMatch(/float Ot\[DP \/ 2\]/);
    expect(direct.source).not.toMatch(/float Ot\[/);
    // The rescale of O skipped warp-uniformly where no row's max moved (direct accumulation only).
    expect(direct.source).toMatch(/if \(!__all_sync\(0xffffffffu, alpha0 == 1\.f && alpha1 == 1\.f\)\)/);
    expect(renderAttention({ ...ad, pv: undefined, pvAccumulate: undefined, lazyRescale: undefined, qk: 'fp8' }).source).not.toMatch(/__all_sync/);
    expect(direct.name).not.toBe(k.name);
    expect(attentionSharedBytes(ad).v).toBe(128 * ad.dp);
    expect(attentionSharedBytes({ ...ad, pv: undefined }).v).toBe(2 * 128 * ad.dp);
    const vq = renderVQuant(vquantDescriptor(after, ops(after, 'AttentionQuantizeV')[0]));
    expect(vq.args).toHaveLength(3);
    const list = [k, direct, vq].map(({ args: _, ...x }) => x);
    await expectBuildsWithoutSpills(list, 'pv');
  }, 240_000);
});
