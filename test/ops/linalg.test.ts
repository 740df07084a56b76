/**
 * Conformance of MatMul, Gemm and Conv (compiler/ops/linalg.ts) against onnxruntime-node:
 * MatMul 1-D operands and batched broadcasting; Gemm transA/transB/alpha/beta with every bias
 * broadcast; Conv 1-D/2-D/3-D with groups, strides, dilations, asymmetric pads and auto_pad.
 */
import { describe, it } from 'vitest';
import { checkNode, f32, float, i64, init, Rng } from '../helpers/onnx-model.ts';

const r = new Rng(7);

describe('MatMul', () => {
  const cases: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[4], [4, 5]], // 1-D left: prepend then drop
    [[3, 4], [4]], // 1-D right
    [[4], [4]], // dot product -> scalar
    [[2, 3, 4], [4, 5]],
    [[3, 4], [2, 4, 5]],
    [[2, 1, 3, 4], [5, 4, 2]], // batch broadcast [2,1] x [5]
    [[7], [2, 7, 3]], // 1-D against a batch
    [[2, 3, 7], [7]],
  ];
  for (const [a, b] of cases) it(`[${a}] x [${b}]`, () => checkNode('MatMul', [r.randn(a), r.randn(b)]));
  // Regression: the reference wrote a double into BigInt64Array storage and threw for int64.
  it('int64 and int32 operands', async () => {
    await checkNode('MatMul', [i64([2, 2, 3], [2 ** 40, 3, -(2 ** 30), 5, 0, -1, 7, 8, 9, 1, 2, 3]), r.ints([3, 2], -5, 5)]);
    await checkNode('MatMul', [r.ints([4, 3], -50, 50, 'int32'), r.ints([3], -50, 50, 'int32')]);
  });
  it('with an initializer weight', () => checkNode('MatMul', [r.randn([2, 5, 8]), init(r.randn([8, 3]))]));
});

describe('Gemm', () => {
  const m = 3, k = 5, n = 4;
  const A = (ta: number) => r.randn(ta ? [k, m] : [m, k]);
  const B = (tb: number) => r.randn(tb ? [n, k] : [k, n]);
  for (const ta of [0, 1]) for (const tb of [0, 1]) {
    it(`transA=${ta} transB=${tb}, bias [n]`, () => checkNode('Gemm', [A(ta), B(tb), r.randn([n])], { transA: ta, transB: tb }));
  }
  it('alpha/beta, bias [m,1]', () => checkNode('Gemm', [A(0), B(1), r.randn([m, 1])], { transB: 1, alpha: float(0.5), beta: float(-2) }));
  it('bias [m,n] and scalar bias', async () => {
    await checkNode('Gemm', [A(1), B(0), r.randn([m, n])], { transA: 1, beta: float(0.25) });
    await checkNode('Gemm', [A(0), B(0), f32([], [3])], { alpha: float(2) });
    await checkNode('Gemm', [A(0), B(0), r.randn([1, n])]);
  });
  it('no bias', () => checkNode('Gemm', [A(0), B(0)], { alpha: float(1.5) }));
});

describe('Conv', () => {
  it('2-D plain with bias', () => checkNode('Conv', [r.randn([1, 3, 6, 6]), init(r.randn([4, 3, 3, 3])), init(r.randn([4]))]));
  it('2-D groups=2, strides, dilations, asymmetric pads', () => checkNode('Conv',
    [r.randn([2, 4, 9, 8]), init(r.randn([6, 2, 3, 2])), init(r.randn([6]))],
    { group: 2, strides: [2, 1], dilations: [2, 3], pads: [1, 0, 2, 3] }));
  it('2-D depthwise (group = channels), no bias', () => checkNode('Conv',
    [r.randn([1, 3, 5, 5]), init(r.randn([3, 1, 3, 3]))], { group: 3, pads: [1, 1, 1, 1] }));
  it('2-D 1x1 with stride 2 and explicit kernel_shape', () => checkNode('Conv',
    [r.randn([1, 4, 5, 7]), init(r.randn([2, 4, 1, 1]))], { strides: [2, 2], kernel_shape: [1, 1] }));
  for (const autoPad of ['SAME_UPPER', 'SAME_LOWER', 'VALID']) {
    it(`2-D auto_pad ${autoPad} with stride 2`, () => checkNode('Conv',
      [r.randn([1, 2, 7, 6]), init(r.randn([3, 2, 4, 3]))], { auto_pad: autoPad, strides: [2, 2] }));
  }
  it('3-D groups=2, strides, dilations, asymmetric pads', () => checkNode('Conv',
    [r.randn([1, 4, 5, 6, 7]), init(r.randn([4, 2, 2, 3, 3])), init(r.randn([4]))],
    { group: 2, strides: [1, 2, 2], dilations: [2, 1, 2], pads: [0, 1, 2, 1, 0, 1] }));
  it('3-D plain (causal-video style, time kernel 3)', () => checkNode('Conv',
    [r.randn([1, 2, 4, 5, 5]), init(r.randn([3, 2, 3, 3, 3]))], { pads: [2, 1, 1, 0, 1, 1] }));
  it('1-D with stride and pads', () => checkNode('Conv',
    [r.randn([2, 3, 10]), init(r.randn([5, 3, 3])), init(r.randn([5]))], { strides: [3], pads: [2, 1] }));
});
