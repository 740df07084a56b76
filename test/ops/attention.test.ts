/**
 * Conformance of ONNX Attention, opset 23 (compiler/ops/attention.ts) against onnxruntime-node's CPU
 * kernel: 4-D (B,H,S,D) and 3-D (B,S,H·D) layouts, grouped-query heads (4 q heads over 2 kv heads),
 * is_causal (square and Sq != Skv), boolean and additive float masks with broadcasting, scale,
 * softcap, a V head size different from Q/K's; plus a hand-computed tiny case.
 */
import { describe, expect, it } from 'vitest';
import { bool, checkNode, f32, float, init, Rng, type In } from '../helpers/onnx-model.ts';

const r = new Rng(31337);
const o = { opset: 23 };
const attn = (ins: (In | null)[], attrs: Parameters<typeof checkNode>[2] = {}) => checkNode('Attention', ins, attrs, o);

describe('Attention 4-D', () => {
  it('plain', () => attn([r.randn([2, 3, 5, 8]), r.randn([2, 3, 7, 8]), r.randn([2, 3, 7, 8])]));
  it('GQA: 4 q heads over 2 kv heads', () => attn([r.randn([1, 4, 5, 8]), r.randn([1, 2, 6, 8]), r.randn([1, 2, 6, 8])]));
  it('V head size differs from Q/K', () => attn([r.randn([1, 2, 4, 8]), r.randn([1, 2, 5, 8]), r.randn([1, 2, 5, 3])]));
  it('is_causal, square', () => attn([r.randn([1, 2, 6, 4]), r.randn([1, 2, 6, 4]), r.randn([1, 2, 6, 4])], { is_causal: 1 }));
  it('is_causal with GQA and Sq < Skv', () => attn([r.randn([1, 4, 3, 4]), r.randn([1, 2, 5, 4]), r.randn([1, 2, 5, 4])], { is_causal: 1 }));
  it('scale attribute', () => attn([r.randn([1, 2, 4, 8]), r.randn([1, 2, 4, 8]), r.randn([1, 2, 4, 8])], { scale: float(0.9) }));
  it('softcap', () => attn([r.randn([1, 2, 4, 8], -3, 3), r.randn([1, 2, 4, 8], -3, 3), r.randn([1, 2, 4, 8])], { softcap: float(2) }));
  it('boolean mask [Sq,Skv] (each row keeps at least one key)', () => {
    const m = r.bools([5, 6], 0.6);
    const vals = Array.from(m.values);
    for (let s = 0; s < 5; s++) vals[s * 6 + s] = 1;
    return attn([r.randn([2, 2, 5, 4]), r.randn([2, 2, 6, 4]), r.randn([2, 2, 6, 4]), { ...m, values: vals }]);
  });
  it('boolean mask broadcast over heads [B,1,Sq,Skv]', () => {
    const m = r.bools([2, 1, 4, 4], 0.7);
    const vals = Array.from(m.values).map((v, i) => ((i % 4) === 0 ? 1 : v));
    return attn([r.randn([2, 4, 4, 4]), r.randn([2, 2, 4, 4]), r.randn([2, 2, 4, 4]), { ...m, values: vals }]);
  });
  it('additive float mask [1,H,Sq,Skv] with -Inf entries', () => {
    const m = r.randn([1, 2, 3, 5]);
    const vals = Array.from(m.values).map((v, i) => (i % 5 === 4 ? -Infinity : v));
    return attn([r.randn([1, 2, 3, 4]), r.randn([1, 2, 5, 4]), r.randn([1, 2, 5, 4]), init({ ...m, values: vals })]);
  });
  it('softcap with an additive mask (softcap applies before the mask, as ORT does)', () => attn(
    [r.randn([1, 1, 3, 4], -3, 3), r.randn([1, 1, 5, 4], -3, 3), r.randn([1, 1, 5, 4]), r.randn([3, 5], -3, 3)], { softcap: float(1) }));
  it('a fully masked row gives zeros (bool and -Inf masks)', async () => {
    const q = r.randn([1, 1, 2, 4]), k = r.randn([1, 1, 3, 4]), v = r.randn([1, 1, 3, 4]);
    const res = await attn([q, k, v, bool([2, 3], [0, 0, 0, 1, 0, 1])]);
    expect(Array.from(res.ours.y0.toFloat32().slice(0, 4))).toEqual([0, 0, 0, 0]);
    await attn([q, k, v, f32([2, 3], [-Infinity, -Infinity, -Infinity, 0, 1, -Infinity])]);
  });
  it('additive float mask combined with is_causal', () => attn(
    [r.randn([1, 2, 4, 4]), r.randn([1, 2, 4, 4]), r.randn([1, 2, 4, 4]), r.randn([4, 4])], { is_causal: 1 }));
});

describe('Attention 3-D', () => {
  it('q_num_heads = kv_num_heads = 2', () => attn([r.randn([2, 5, 16]), r.randn([2, 6, 16]), r.randn([2, 6, 16])], { q_num_heads: 2, kv_num_heads: 2 }));
  it('GQA: q_num_heads 4, kv_num_heads 2', () => attn([r.randn([1, 5, 32]), r.randn([1, 5, 16]), r.randn([1, 5, 16])], { q_num_heads: 4, kv_num_heads: 2 }));
  it('causal with a float mask', () => attn(
    [r.randn([1, 4, 8]), r.randn([1, 4, 8]), r.randn([1, 4, 8]), r.randn([1, 1, 4, 4])], { q_num_heads: 2, kv_num_heads: 2, is_causal: 1 }));
  it('V hidden size differs (v head 3)', () => attn([r.randn([1, 3, 8]), r.randn([1, 4, 8]), r.randn([1, 4, 6])], { q_num_heads: 2, kv_num_heads: 2 }));
});

describe('Attention hand-computed', () => {
  it('one head, two keys, scale 1: y = softmax([q·k0, q·k1]) · V', async () => {
    // q = [1, 0]; k0 = [0, 0], k1 = [ln 3, 0] -> scores [0, ln 3] -> p = [1/4, 3/4].
    const res = await attn([f32([1, 1, 1, 2], [1, 0]), f32([1, 1, 2, 2], [0, 0, Math.log(3), 0]), f32([1, 1, 2, 2], [4, 8, 0, 4])], { scale: float(1) });
    expect(Array.from(res.ours.y0.toFloat32())).toEqual([expect.closeTo(1, 5), expect.closeTo(5, 5)]);
  });
});
