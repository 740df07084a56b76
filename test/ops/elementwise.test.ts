/**
 * Conformance of the element-wise ops (compiler/ops/elementwise.ts) against onnxruntime-node:
 * unary maths, broadcasting binary ops (incl. rank-changing and scalars), comparisons/logic,
 * variadic Max/Min, Where, Clip with/without bounds, Cast/CastLike among float32/int64/bool/float16,
 * Identity, IsNaN; plus the broadcast-mismatch error.
 */
import { describe, expect, it } from 'vitest';
import { CompileError } from '../../compiler/errors.ts';
import { bool, buildModel, checkNode, conform, f32, i64, importAndInfer, init, Rng, T } from '../helpers/onnx-model.ts';

const r = new Rng(1234);

describe('unary', () => {
  for (const op of ['Neg', 'Abs', 'Exp', 'Sin', 'Cos', 'Tanh', 'Sigmoid', 'Relu', 'Reciprocal']) {
    it(op, () => checkNode(op, [r.randn([2, 3, 4])]));
  }
  it('Sigmoid on large magnitudes', () => checkNode('Sigmoid', [f32([6], [-100, -20, -1e-3, 0, 20, 100])]));
  for (const op of ['Sqrt', 'Log']) it(`${op} on positives`, () => checkNode(op, [r.randn([3, 5], 0.01, 10)]));
  it('Log/Sqrt of 0 and negatives give -Inf/NaN', async () => {
    await checkNode('Log', [f32([3], [0, -1, 1])]);
    await checkNode('Sqrt', [f32([3], [0, -1, 4])]);
  });
  it('Neg and Abs on int64', async () => {
    await checkNode('Neg', [i64([4], [-3, 0, 7, -(2 ** 40)])]);
    await checkNode('Abs', [i64([4], [-3, 0, 7, -(2 ** 40)])]);
  });
  it('Not', () => checkNode('Not', [r.bools([2, 5])]));
  it('Gelu exact and tanh (opset 20)', async () => {
    await checkNode('Gelu', [r.randn([3, 7], -4, 4)], {}, { opset: 20 });
    await checkNode('Gelu', [r.randn([3, 7], -4, 4)], { approximate: 'tanh' }, { opset: 20 });
    await checkNode('Gelu', [f32([6], [-9, -3.2, -0.5, 0, 2.7, 8])], {}, { opset: 20 });
  });
  it('IsNaN', () => checkNode('IsNaN', [f32([5], [NaN, 0, Infinity, -1, NaN])]));
  it('Identity', () => checkNode('Identity', [r.ints([3, 2], -5, 5)]));
});

describe('binary arithmetic with broadcasting', () => {
  const shapes: [number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4]],
    [[2, 1, 4], [3, 1]],
    [[5], [2, 3, 1, 5]], // rank-changing, smaller rank first
    [[], [2, 3]], // scalar
    [[3, 1, 2], [1, 4, 1]],
  ];
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    for (const [a, b] of shapes) {
      it(`${op} [${a}] x [${b}]`, () => checkNode(op, [r.randn(a), op === 'Div' ? r.randn(b, 0.5, 2) : r.randn(b)]));
    }
  }
  it('Add with an initializer operand', () => checkNode('Add', [r.randn([2, 3]), init(r.randn([1, 3]))]));
  it('int64 Add/Sub/Mul', async () => {
    for (const op of ['Add', 'Sub', 'Mul']) await checkNode(op, [r.ints([2, 3], -50, 50), r.ints([3], -50, 50)]);
  });
  it('int64 Add/Mul exact up to 2^53, INT64 extremes pass through Where/Min/Max', async () => {
    await checkNode('Add', [i64([3], [2 ** 52, -(2 ** 52), 2 ** 53 - 1]), i64([3], [2 ** 52 - 1, 7, -5])]);
    await checkNode('Mul', [i64([2], [2 ** 26 + 1, -(2 ** 25)]), i64([2], [2 ** 26 - 1, 3])]);
    const max = 9223372036854775807n, min = -9223372036854775808n;
    await checkNode('Where', [bool([3], [1, 0, 1]), i64([3], [max, 5n, min]), i64([1], [0n])]);
    await checkNode('Min', [i64([3], [max, max, min]), i64([3], [4n, max, 0n])]);
    await checkNode('Max', [i64([3], [max, 1n, min]), i64([3], [4n, min, min])]);
  });
  // Known limitation (documented in tensor.ts: int64 elements are read as JS numbers, exact below
  // 2^53): arithmetic on int64 values beyond 2^53 rounds. Marked .fails so lifting it is noticed.
  it.fails('int64 Add beyond 2^53 is exact (known limitation: it is not)', () =>
    checkNode('Add', [i64([1], [2n ** 53n]), i64([1], [1n])]));
  it('int64 Div truncates toward zero', () => checkNode('Div', [i64([6], [7, -7, 7, -7, 0, 9]), i64([6], [2, 2, -2, -2, 3, 3])]));
  it('Pow float^float', () => checkNode('Pow', [r.randn([2, 3], 0.1, 3), r.randn([3], -2, 2)]));
  it('Pow float^int64 exponent', () => checkNode('Pow', [r.randn([2, 3], -3, 3), i64([3], [2, 3, 0])]));
});

describe('comparison and logic', () => {
  // Small integer-valued floats so ties occur.
  const a = () => T('float32', [2, 3, 4], r.ints([24], -2, 2).values), b = () => T('float32', [3, 1], r.ints([3], -2, 2).values);
  for (const op of ['Equal', 'Greater', 'GreaterOrEqual', 'Less', 'LessOrEqual']) {
    it(`${op} float broadcast`, () => checkNode(op, [a(), b()]));
    it(`${op} int64`, () => checkNode(op, [r.ints([4, 3], -2, 2), r.ints([3], -2, 2)]));
  }
  it('Equal on bool', () => checkNode('Equal', [r.bools([2, 3]), r.bools([3])]));
  it('And/Or broadcast', async () => {
    await checkNode('And', [r.bools([2, 3, 4]), r.bools([1, 4])]);
    await checkNode('Or', [r.bools([2, 3, 4]), r.bools([3, 1])]);
  });
});

describe('Max/Min', () => {
  for (const op of ['Max', 'Min']) {
    it(`${op} of three broadcast inputs`, () => checkNode(op, [r.randn([2, 3, 4]), r.randn([4]), r.randn([3, 1])]));
    it(`${op} of one input`, () => checkNode(op, [r.randn([3, 2])]));
    it(`${op} int64`, () => checkNode(op, [r.ints([2, 3], -9, 9), r.ints([2, 1], -9, 9)]));
  }
});

describe('Where', () => {
  it('same shapes', () => checkNode('Where', [r.bools([3, 4]), r.randn([3, 4]), r.randn([3, 4])]));
  it('rank-changing broadcast with a scalar', () => checkNode('Where', [r.bools([3, 1]), r.randn([2, 1, 4]), f32([], [-7])]));
  it('int64 values', () => checkNode('Where', [r.bools([4]), r.ints([2, 4], -5, 5), r.ints([1], 100, 100)]));
});

describe('Clip', () => {
  const x = () => r.randn([3, 5], -3, 3);
  it('without bounds', () => checkNode('Clip', [x()]));
  it('min only', () => checkNode('Clip', [x(), f32([], [-0.5])]));
  it('max only (min omitted)', () => checkNode('Clip', [x(), null, f32([], [0.25])]));
  it('both bounds from initializers', () => checkNode('Clip', [x(), init(f32([], [-1])), init(f32([], [1]))]));
  it('int64', () => checkNode('Clip', [r.ints([10], -20, 20), i64([], [-3]), i64([], [4])]));
});

describe('Cast', () => {
  const cast = (x: Parameters<typeof checkNode>[1][0], to: number) => checkNode('Cast', [x], { to });
  const FLOAT = 1, BOOL = 9, FLOAT16 = 10, INT64 = 7, INT32 = 6;
  it('float32 -> int64 truncates toward zero', () => cast(f32([8], [-2.7, -2.5, -0.5, 0, 0.5, 2.5, 2.7, 1e6]), INT64));
  it('float32 -> int32', () => cast(f32([4], [-2.7, 3.9, 100.5, -0]), INT32));
  it('float32 -> bool', () => cast(f32([5], [0, -0, 0.1, -3, NaN]), BOOL));
  it('bool -> float32 / int64', async () => {
    await cast(bool([4], [1, 0, 0, 1]), FLOAT);
    await cast(bool([4], [1, 0, 0, 1]), INT64);
  });
  it('int64 -> float32 / bool', async () => {
    await cast(i64([4], [-5, 0, 3, 2 ** 40]), FLOAT);
    await cast(i64([4], [-5, 0, 3, 2 ** 40]), BOOL);
  });
  it('float32 -> float16 rounds to nearest even (ties, subnormals, overflow)', async () => {
    const ties = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25, 2 ** -24, 65504, 65519, 65520, -70000, 0.1, -1 / 3];
    await cast(f32([ties.length], ties), FLOAT16);
    await cast(r.randn([4, 8]), FLOAT16);
  });
  it('float32 -> float16 -> float32 -> int64', () => conform({
    inputs: [{ name: 'x', dtype: 'float32', shape: [6] }],
    nodes: [
      { op: 'Cast', inputs: ['x'], outputs: ['h'], attrs: { to: FLOAT16 } },
      { op: 'Cast', inputs: ['h'], outputs: ['f'], attrs: { to: FLOAT } },
      { op: 'Cast', inputs: ['h'], outputs: ['i'], attrs: { to: INT64 } },
    ],
    outputs: ['h', 'f', 'i'],
  }, { x: f32([6], [2049, -1000.7, 0.3333, 1e-8, 5.5, -6.5]) }));
  it('CastLike float32 like int64 and int64 like float32', async () => {
    await checkNode('CastLike', [f32([4], [-1.5, 2.5, 3.99, 0]), i64([1], [0])]);
    await checkNode('CastLike', [i64([3], [-1, 2, 3]), f32([1], [0])]);
  });
});

describe('errors', () => {
  it('Add broadcast mismatch is a CompileError naming the node', () => {
    const bytes = buildModel({
      inputs: [{ name: 'a', dtype: 'float32', shape: [2, 3] }, { name: 'b', dtype: 'float32', shape: [4] }],
      nodes: [{ op: 'Add', inputs: ['a', 'b'], outputs: ['y'], name: 'my_add' }],
      outputs: ['y'],
    });
    let err: unknown;
    try { importAndInfer(bytes); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(CompileError);
    expect((err as Error).message).toContain("Add node 'my_add'");
    expect((err as Error).message).toContain('[2,3] and [4]');
  });
});
