/**
 * The sm_90a FP8 tensor-core model (compiler/quant/tensor-core.ts) and dc.QLinear{accumulate: "sm90"}:
 * each expected value below is worked out by hand from the model's rules (align the 33 terms of a k32
 * step to the largest exponent, truncate each toward zero to 13 fractional bits there, sum exactly,
 * keep 14 significant bits of the sum), next to the exact sum that differs from it.
 */
import { describe, expect, it } from 'vitest';
import type { Node } from '../../compiler/ir/graph.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { lookupOp } from '../../compiler/ops/registry.ts';
import { e4m3Parts, sm90Dot } from '../../compiler/quant/tensor-core.ts';

/** One output over K codes: a and b padded with zeros to K. */
function dot(a: number[], b: number[], K = 32, promote = 0): number {
  const pad = (v: number[]) => [...v, ...new Array(K - v.length).fill(0)];
  return sm90Dot(e4m3Parts(pad(a)), 0, e4m3Parts(pad(b)), 0, K, promote);
}

describe('sm_90a FP8 tensor-core model', () => {
  it('sums exactly what fits in 13 fractional bits of the largest term', () => {
    expect(dot(new Array(32).fill(1), new Array(32).fill(1))).toBe(32);
    expect(dot(new Array(64).fill(-1.5), new Array(64).fill(2), 64)).toBe(-192);
    // 2^-12 against 1: two units of 2^-13, kept.
    expect(dot([1, 2 ** -6], [1, 2 ** -6])).toBe(1 + 2 ** -12);
  });

  it('drops a product below 2^-13 of the largest term (exact sum 1 + 2^-14)', () => {
    // 2^-7 is an e4m3 subnormal (4 · 2^-9): the product is 2^-14, half a unit, truncated to 0.
    expect(dot([1, 2 ** -7], [1, 2 ** -7])).toBe(1);
  });

  it('truncates toward zero, not down (exact sum 1 - 2^-14)', () => {
    // -half a unit truncates to 0; rounding down would give 1 - 2^-13.
    expect(dot([1, -(2 ** -7)], [1, 2 ** -7])).toBe(1);
  });

  it('keeps 14 significant bits of the sum (exact sum 4.0625 + 2^-13)', () => {
    // 1.75 · 1.75 = 3.0625 and 1 at exponent 0, and 2^-6 · 2^-7 = 2^-13 (one unit, kept while aligned):
    // 33281 units of 2^-13 is 16 bits; the normalised fp32 keeps the top 14: 33280 units.
    expect(dot([1.75, 1, 2 ** -6], [1.75, 1, 2 ** -7])).toBe(4.0625);
  });

  it('carries the accumulator into the next k32 step as one more aligned term (exact sum 5 + 2^-12)', () => {
    // Step 1 leaves 1 + 2^-12; step 2 adds 2 · 2 = 4, so the alignment moves to exponent 2 and the
    // accumulator's 2^-12 (half a unit of 2^-11) is truncated away.
    const a = [1, 2 ** -6, ...new Array(30).fill(0), 2], b = [1, 2 ** -6, ...new Array(30).fill(0), 2];
    expect(dot(a, b, 64)).toBe(5);
    // Promoted every k32 step, the tensor cores' sums go into an fp32 total: nothing is lost here.
    expect(dot(a, b, 64, 32)).toBe(5 + 2 ** -12);
  });

  it('walks a K that is not a multiple of 32 (a short last step) and promotes the remainder of K too', () => {
    // Steps at 0 (1 + 2^-12), 32 (+ 4) and 64 (+ 2^-12, 16 codes).
    const a = [1, 2 ** -6, ...new Array(30).fill(0), 2, ...new Array(31).fill(0), 2 ** -6];
    // Unpromoted: 2^-12 is half a unit of 2^-11 at step 32 (exponent 2) and at step 64: both dropped.
    expect(dot(a, a, 80)).toBe(5);
    // Every 64 codes: steps 0 + 32 give 5, the remainder (step 64) 2^-12, added in fp32.
    expect(dot(a, a, 80, 64)).toBe(5 + 2 ** -12);
    // Every 32: nothing dropped.
    expect(dot(a, a, 80, 32)).toBe(5 + 2 ** -11);
  });

  it('takes subnormal codes at exponent -6, and a zero factor never sets the alignment', () => {
    // 7·2^-9 squared: 49 · 2^-18 exactly (product exponent -12, the step's largest).
    expect(dot([7 * 2 ** -9], [7 * 2 ** -9])).toBe(49 * 2 ** -18);
    // Next to 1: 49 · 2^-18 is 1.53 units of 2^-13, truncated to one (exact sum 1 + 49 · 2^-18).
    expect(dot([1, 7 * 2 ** -9], [1, 7 * 2 ** -9])).toBe(1 + 2 ** -13);
    // 0 · 448 is no term at exponent 8 (nor at 2, were zero read as a subnormal): 2^-12 stays.
    expect(dot([0, 2 ** -6], [448, 2 ** -6])).toBe(2 ** -12);
    expect(dot([-0, 0], [1, -448])).toBe(0);
  });

  it('propagates NaN (what dc.Quantize makes of a NaN or infinite activation), as the tensor cores do, even times 0', () => {
    expect(dot([1, NaN], [1, 2])).toBeNaN();
    expect(dot([1, NaN], [1, 0])).toBeNaN();
    // In a later k32 step, promoted or not.
    const a = [1, ...new Array(31).fill(0), NaN];
    expect(dot(a, new Array(33).fill(1), 64)).toBeNaN();
    expect(dot(a, new Array(33).fill(1), 64, 32)).toBeNaN();
  });

  it('refuses values that are not e4m3 (480 is e4m3fn\'s NaN code, not a value) and promotion off the k32 steps', () => {
    expect(() => e4m3Parts([1.0625])).toThrow(/expected e4m3 values.*found 1.0625 at 0/);
    expect(() => e4m3Parts([1, 512])).toThrow(/expected e4m3 values.*found 512 at 1/);
    expect(() => e4m3Parts([-480])).toThrow(/expected e4m3 values.*found -480 at 0/);
    expect(e4m3Parts([-448, 2 ** -9]).mant).toEqual(Int32Array.from([-14, 1]));
    expect(() => dot([1], [1], 64, 48)).toThrow(/k32 steps.*found 48/);
    expect(() => dot([1], [1], 64, -32)).toThrow(/k32 steps.*found -32/);
  });
});

describe('dc.QLinear accumulate "sm90"', () => {
  const node = (attrs: Record<string, number | string>, bias = true): Node => ({
    op: 'QLinear', domain: 'dc', name: 'proj', inputs: ['xq', 'xs', 'wq', 'ws', ...(bias ? ['b'] : [])], outputs: ['y'], attrs: { format: 'fp8', ...attrs },
  });
  const run = (n: Node, ins: Tensor[]) => (lookupOp(n)!.exec(ins, n) as Tensor[])[0];
  const t = (shape: number[], v: number[]) => Tensor.fromNumbers('float32', shape, v);
  // x = [1, 2^-7], w rows [1, 2^-7] and [2, 0]: sums 1 + 2^-14 (exact) / 1 (tensor cores), and 2.
  const xq = t([1, 2], [1, 2 ** -7]), xs = t([1, 1], [2]);
  const wqT = t([2, 2], [1, 2 ** -7, 2, 0]), ws = t([2, 1], [0.5, 3]), b = t([2], [0.25, -1]);

  it('applies the own kernel epilogue to the tensor-core sums: fma(acc·xs, ws, b)', () => {
    const y = run(node({ transB: 1, to: 1, accumulate: 'sm90' }), [xq, xs, wqT, ws, b]);
    expect(y.shape).toEqual([1, 2]);
    expect(y.toNumbers()).toEqual([1 * 2 * 0.5 + 0.25, 2 * 2 * 3 - 1]);
    const exact = run(node({ transB: 1, to: 1 }), [xq, xs, wqT, ws, b]);
    expect(exact.get(0)).toBe(Math.fround((1 + 2 ** -14) * 2 * 0.5 + 0.25));
  });

  it('rounds the bias epilogue once, as fmaf does, where float64 arithmetic would round twice', () => {
    // acc = 1 + 2^-12 (x = w = [1, 2^-6]), xs = 1, ws = 1 + 2^-12: acc·xs·ws = 1 + 2^-11 + 2^-24, an
    // fp32 midpoint; with b = 2^-60 the exact value is just above it, so fmaf gives 1 + 2^-11 + 2^-23.
    // In float64 the sum rounds to the midpoint first, and then to even: 1 + 2^-11.
    const x = t([1, 2], [1, 2 ** -6]), w = t([1, 2], [1, 2 ** -6]);
    const y = run(node({ transB: 1, to: 1, accumulate: 'sm90' }), [x, t([1, 1], [1]), w, t([1, 1], [1 + 2 ** -12]), t([1], [2 ** -60])]);
    expect(y.get(0)).toBe(1 + 2 ** -11 + 2 ** -23);
    // Just below the midpoint (b = -2^-60): 1 + 2^-11.
    expect(run(node({ transB: 1, to: 1, accumulate: 'sm90' }), [x, t([1, 1], [1]), w, t([1, 1], [1 + 2 ** -12]), t([1], [-(2 ** -60)])]).get(0)).toBe(1 + 2 ** -11);
  });

  it('reads W as [K, N] without transB, and rounds once to the output type', () => {
    const wq = t([2, 2], [1, 2, 2 ** -7, 0]), wsRow = t([1, 2], [0.5, 3]);
    // x = [1, 2^-6]: the first sum is 1 + 2^-12 (kept), times xs · ws = 2 · 0.5; bf16 rounds it to 1.
    const x2 = t([1, 2], [1, 2 ** -6]), w2 = t([2, 2], [1, 2, 2 ** -6, 0]);
    const f32 = run(node({ to: 1, accumulate: 'sm90' }, false), [x2, xs, w2, wsRow]);
    expect(f32.toNumbers()).toEqual([1 + 2 ** -12, 12]);
    const bf16 = run(node({ to: 16, accumulate: 'sm90' }, false), [x2, xs, w2, wsRow]);
    expect(bf16.toNumbers()).toEqual([1, 12]);
    expect(run(node({ to: 1, accumulate: 'sm90' }, false), [xq, xs, wq, wsRow]).toNumbers()).toEqual([1, 12]);
  });

  it('gives NaN outputs for a NaN code, only in its row (or column), rounded to the output type as NaN', () => {
    const xNaN = t([2, 2], [1, NaN, 1, 1]), xs2 = t([2, 1], [1, 1]);
    const y = run(node({ transB: 1, to: 16, accumulate: 'sm90' }), [xNaN, xs2, wqT, ws, b]).toNumbers();
    expect(y.slice(0, 2).every(Number.isNaN)).toBe(true);
    // Row 1: x = [1, 1] against [1, 2^-7] (1 + 2^-7, kept) and [2, 0]: fma(s, ws, b) in bf16.
    expect(y.slice(2)).toEqual([(1 + 2 ** -7) * 0.5 + 0.25, 2 * 3 - 1]);
  });

  it('names the node and the input for a value that is not e4m3, and the node for a promotion off the k32 steps', () => {
    expect(() => run(node({ transB: 1, accumulate: 'sm90' }), [t([1, 2], [1, 1.0625]), xs, wqT, ws, b])).toThrow(/^QLinear 'proj' input 'xq': expected e4m3 values.*found 1.0625 at 1$/);
    expect(() => run(node({ transB: 1, accumulate: 'sm90' }), [xq, xs, t([2, 2], [1, 2, 480, 0]), ws, b])).toThrow(/^QLinear 'proj' input 'wq': expected e4m3 values.*found 480 at 2$/);
    expect(() => run(node({ transB: 1, accumulate: 'sm90', promote: 48 }), [xq, xs, wqT, ws, b])).toThrow(/^QLinear 'proj': expected promotion .*k32 steps.*found 48$/);
  });

  it('names the node for an unknown accumulation or a format the FP8 tensor cores do not take', () => {
    expect(() => run(node({ transB: 1, accumulate: 'fast' }), [xq, xs, wqT, ws, b])).toThrow(/QLinear 'proj'.*accumulate "exact" or "sm90".*'fast'/);
    expect(() => run(node({ transB: 1, accumulate: 'sm90', format: 'nvfp4' }), [xq, xs, wqT, ws, b])).toThrow(/QLinear 'proj'.*format fp8/);
  });
});
