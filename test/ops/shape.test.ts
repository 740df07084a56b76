/**
 * Conformance of the data-movement / shape ops (compiler/ops/shape.ts) against onnxruntime-node:
 * Shape (start/end), Constant, ConstantOfShape, Reshape (0, -1, allowzero), Expand (bidirectional),
 * Squeeze/Unsqueeze, Transpose, Concat, Slice (negative/oversized bounds, negative steps), Split
 * (uneven, num_outputs, split input), SplitToSequence + SequenceAt, Gather, GatherND (batch_dims),
 * Range, Pad (constant/reflect/edge/wrap, axes); plus the incompatible-Reshape error.
 */
import { describe, expect, it } from 'vitest';
import { CompileError } from '../../compiler/errors.ts';
import { buildModel, checkNode, conform, f32, i64, importAndInfer, init, Rng, T } from '../helpers/onnx-model.ts';

const r = new Rng(99);
const I64_MAX = 9223372036854775807, I64_MIN = -9223372036854775808;

describe('Shape / Constant / ConstantOfShape', () => {
  const x = () => r.randn([2, 3, 4, 5]);
  it('Shape', () => checkNode('Shape', [x()]));
  it('Shape with start/end', async () => {
    await checkNode('Shape', [x()], { start: 1, end: 3 });
    await checkNode('Shape', [x()], { start: -3 });
    await checkNode('Shape', [x()], { end: -1 });
    await checkNode('Shape', [x()], { start: -10, end: 10 }); // clamped
    await checkNode('Shape', [x()], { start: 3, end: 1 }); // empty
  });
  it('Constant: value tensor, value_float, value_ints', async () => {
    await checkNode('Constant', [], { value: f32([2, 2], [1, -2, 3.5, 4]) });
    await checkNode('Constant', [], { value: i64([3], [7, -1, 2 ** 40]) });
    await checkNode('Constant', [], { value_float: { float: 0.25 } });
    await checkNode('Constant', [], { value_int: -3 });
    await checkNode('Constant', [], { value_ints: [4, 5, 6] });
    await checkNode('Constant', [], { value_floats: { floats: [0.5, -1] } });
  });
  it('ConstantOfShape default and with int64 value', async () => {
    await checkNode('ConstantOfShape', [init(i64([3], [2, 1, 3]))]);
    await checkNode('ConstantOfShape', [init(i64([2], [2, 2]))], { value: i64([1], [-7]) });
    await checkNode('ConstantOfShape', [init(i64([2], [3, 1]))], { value: f32([1], [2.5]) });
  });
  it('ConstantOfShape from a Shape output', () => conform({
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'ConstantOfShape', inputs: ['s'], outputs: ['y'], attrs: { value: f32([1], [1.5]) } },
    ],
    outputs: ['y'],
  }, { x: r.randn([2, 3]) }));
});

describe('Reshape', () => {
  const x = () => r.randn([2, 3, 4]);
  for (const spec of [[6, 4], [0, -1], [-1], [2, 0, 2, 2], [4, -1, 3], [1, 24, 1]]) {
    it(`to [${spec}]`, () => checkNode('Reshape', [x(), init(i64([spec.length], spec))]));
  }
  it('allowzero=1 keeps a literal 0', () => checkNode('Reshape', [f32([2, 0], []), init(i64([2], [0, 2]))], { allowzero: 1 }));
  it('allowzero=1 without zeros behaves as plain', () => checkNode('Reshape', [x(), init(i64([2], [-1, 12]))], { allowzero: 1 }));
  it('int64 data', () => checkNode('Reshape', [r.ints([6], 0, 9), init(i64([2], [3, -1]))]));
  it('incompatible shape is a CompileError', () => {
    for (const spec of [[5, 5], [7, -1]]) {
      const bytes = buildModel({
        inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3, 4] }],
        nodes: [{ op: 'Reshape', inputs: ['x', 's'], outputs: ['y'], name: 'bad_reshape' }],
        initializers: { s: i64([2], spec) },
        outputs: ['y'],
      });
      expect(() => importAndInfer(bytes)).toThrow(CompileError);
      expect(() => importAndInfer(bytes)).toThrow(/Reshape node 'bad_reshape'/);
    }
  });
});

describe('Expand / Squeeze / Unsqueeze / Transpose / Concat', () => {
  it('Expand to a larger rank', () => checkNode('Expand', [r.randn([3, 1]), init(i64([3], [2, 1, 4]))]));
  it('Expand bidirectional (shape has 1s where x is larger)', () => checkNode('Expand', [r.randn([2, 1, 4]), init(i64([2], [3, 1]))]));
  it('Expand int64 to same rank', () => checkNode('Expand', [r.ints([1, 3], 0, 9), init(i64([2], [2, 3]))]));
  it('Squeeze with axes (negative)', () => checkNode('Squeeze', [r.randn([1, 3, 1, 2]), init(i64([2], [0, -2]))]));
  it('Squeeze without axes', () => checkNode('Squeeze', [r.randn([1, 3, 1, 2, 1])]));
  it('Unsqueeze unsorted and negative axes', async () => {
    await checkNode('Unsqueeze', [r.randn([3, 2]), init(i64([2], [3, 0]))]);
    await checkNode('Unsqueeze', [r.randn([3, 2]), init(i64([2], [-1, 1]))]);
    await checkNode('Unsqueeze', [f32([], [5]), init(i64([1], [0]))]);
  });
  it('Transpose default and explicit perm', async () => {
    await checkNode('Transpose', [r.randn([2, 3, 4])]);
    await checkNode('Transpose', [r.randn([2, 3, 4, 5])], { perm: [0, 2, 3, 1] });
    await checkNode('Transpose', [r.ints([2, 3], 0, 9)], { perm: [1, 0] });
  });
  it('Concat on axis -1 of three inputs', () => checkNode('Concat', [r.randn([2, 3, 1]), r.randn([2, 3, 4]), r.randn([2, 3, 2])], { axis: -1 }));
  it('Concat on axis 0, int64, with an empty input', () => checkNode('Concat', [r.ints([2, 2], 0, 9), i64([0, 2], []), r.ints([1, 2], 0, 9)], { axis: 0 }));
  it('Concat on axis 1', () => checkNode('Concat', [r.randn([2, 1, 3]), r.randn([2, 2, 3])], { axis: 1 }));
});

describe('Slice', () => {
  const x = () => r.randn([5, 6, 4]);
  const sl = (starts: number[], ends: number[], axes?: number[], steps?: number[]) => checkNode('Slice', [
    x(), init(i64([starts.length], starts)), init(i64([ends.length], ends)),
    axes ? init(i64([axes.length], axes)) : null, steps ? init(i64([steps.length], steps)) : null,
  ]);
  it('plain starts/ends', () => sl([1, 2], [4, 5]));
  it('negative starts/ends', () => sl([-4, -3], [-1, 6], [0, 1]));
  it('oversized ends (INT64_MAX) and starts', () => sl([2, -100], [I64_MAX, 100], [1, 2]));
  it('negative axes and step 2', () => sl([0, 1], [5, 6], [-3, -2], [2, 2]));
  it('negative step to INT64_MIN (full reverse)', () => sl([-1], [I64_MIN], [1], [-1]));
  it('negative step -2 with clamped start', () => sl([100, 3], [-100, 0], [0, 2], [-2, -1]));
  it('empty result (start past end)', () => sl([3], [1], [0]));
  // Regression: with a negative step, starts clamp to [0, dim-1] (not [-1, dim-1]), so a start far
  // below -dim still yields element 0.
  it('negative step, start below -dim clamps to 0', async () => {
    await sl([-100], [I64_MIN], [1], [-1]);
    await sl([-7], [-8], [0], [-1]);
    await sl([-100, 2], [-100, 0], [0, 2], [-1, -1]);
  });
  it('int64 data', () => checkNode('Slice', [r.ints([6], 0, 99), init(i64([1], [-2])), init(i64([1], [0])), init(i64([1], [0])), init(i64([1], [-1]))]));
});

describe('shape arithmetic across nodes', () => {
  it('Shape -> Gather -> Unsqueeze -> Concat -> Reshape (folded at compile time)', () => conform({
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3, 4] }],
    nodes: [
      { op: 'Shape', inputs: ['x'], outputs: ['s'] },
      { op: 'Gather', inputs: ['s', 'i0'], outputs: ['d0'], attrs: { axis: 0 } },
      { op: 'Unsqueeze', inputs: ['d0', 'ax'], outputs: ['d0u'] },
      { op: 'Concat', inputs: ['d0u', 'minus1'], outputs: ['spec'], attrs: { axis: 0 } },
      { op: 'Reshape', inputs: ['x', 'spec'], outputs: ['y'] },
      { op: 'Mul', inputs: ['d0', 'd0'], outputs: ['sq'] },
    ],
    initializers: { i0: i64([], [0]), ax: i64([1], [0]), minus1: i64([1], [-1]) },
    outputs: ['y', 'spec', 'sq'],
  }, { x: r.randn([2, 3, 4]) }));
});

describe('Split', () => {
  it('uneven num_outputs (7 into 3)', () => checkNode('Split', [r.randn([2, 7])], { axis: 1, num_outputs: 3 }, { outputs: 3 }));
  it('uneven num_outputs (7 into 4) on axis -1', () => checkNode('Split', [r.randn([3, 7])], { axis: -1, num_outputs: 4 }, { outputs: 4 }));
  it('split sizes input', () => checkNode('Split', [r.randn([6, 2]), init(i64([3], [1, 3, 2]))], {}, { outputs: 3 }));
  it('equal split by output count (opset 13)', () => checkNode('Split', [r.ints([4, 6], 0, 9)], { axis: 1 }, { outputs: 2, opset: 13 }));
  it('split attribute (opset 11)', () => checkNode('Split', [r.randn([5, 2])], { split: [2, 3] }, { outputs: 2, opset: 11 }));
});

describe('SplitToSequence + SequenceAt', () => {
  const seqModel = (split: ReturnType<typeof i64> | undefined, attrs: Record<string, number>, positions: number[], shape = [2, 5, 3]) => conform({
    inputs: [{ name: 'x', dtype: 'float32', shape }],
    nodes: [
      { op: 'SplitToSequence', inputs: split ? ['x', 'split'] : ['x'], outputs: ['seq'], attrs },
      ...positions.map((p, i) => ({ op: 'SequenceAt', inputs: ['seq', `p${i}`], outputs: [`y${i}`] })),
    ],
    initializers: { ...(split ? { split } : {}), ...Object.fromEntries(positions.map((p, i) => [`p${i}`, i64([], [p])])) },
    outputs: positions.map((_, i) => `y${i}`),
  }, { x: r.randn(shape) });
  it('no split, keepdims=1 (default)', () => seqModel(undefined, { axis: 1 }, [0, 4, -1]));
  it('no split, keepdims=0', () => seqModel(undefined, { axis: 1, keepdims: 0 }, [0, 2, -5]));
  it('no split on negative axis', () => seqModel(undefined, { axis: -1, keepdims: 0 }, [1, 2]));
  it('scalar split, uneven remainder', () => seqModel(i64([], [2]), { axis: 1 }, [0, 1, 2, -1]));
  it('split list', () => seqModel(i64([3], [1, 3, 1]), { axis: 1 }, [0, 1, 2]));
});

describe('Gather / GatherND', () => {
  it('axis 0 with negative indices', () => checkNode('Gather', [r.randn([5, 3]), init(i64([4], [0, -1, 2, -5]))]));
  it('axis 1 with 2-D indices', () => checkNode('Gather', [r.randn([2, 4, 3]), init(i64([2, 2], [3, -4, 1, 1]))], { axis: 1 }));
  it('axis -1 with scalar index (rank drops)', () => checkNode('Gather', [r.randn([2, 3, 4]), init(i64([], [-2]))], { axis: -1 }));
  it('int64 data, indices fed at run time', () => checkNode('Gather', [r.ints([6], 0, 99), i64([2, 3], [5, 0, -6, 1, 1, 2])]));
  it('int32 indices', () => checkNode('Gather', [r.randn([4, 2]), T('int32', [3], [3, -1, 0])], { axis: 0 }));
  it('GatherND full index tuples', () => checkNode('GatherND', [r.randn([3, 4]), init(i64([3, 2], [0, 0, 2, 3, 1, -1]))]));
  it('GatherND slices (partial tuples)', () => checkNode('GatherND', [r.randn([3, 4, 2]), init(i64([2, 1, 1], [2, 0]))]));
  it('GatherND batch_dims=1', () => checkNode('GatherND', [r.randn([2, 3, 4]), init(i64([2, 2, 1], [2, 0, 1, 1]))], { batch_dims: 1 }));
  it('GatherND batch_dims=1 full tuples', () => checkNode('GatherND', [r.randn([2, 3, 4]), init(i64([2, 1, 2], [2, 3, 0, 1]))], { batch_dims: 1 }));
  it('GatherND batch_dims=2', () => checkNode('GatherND', [r.randn([2, 3, 4, 2]), init(i64([2, 3, 1], [0, 3, 2, 1, 1, 0]))], { batch_dims: 2 }));
});

describe('Range', () => {
  it('float', () => checkNode('Range', [init(f32([], [0.5])), init(f32([], [3])), init(f32([], [0.3]))]));
  it('int64 negative delta', () => checkNode('Range', [init(i64([], [10])), init(i64([], [-3])), init(i64([], [-4]))]));
  it('empty', () => checkNode('Range', [init(i64([], [5])), init(i64([], [2])), init(i64([], [1]))]));
});

describe('Pad', () => {
  const pads = (p: number[]) => init(i64([p.length], p));
  it('constant with a value', () => checkNode('Pad', [r.randn([2, 3]), pads([1, 0, 2, 3]), init(f32([], [-9]))]));
  it('constant default 0, 4-D NCHW spatial', () => checkNode('Pad', [r.randn([1, 2, 3, 3]), pads([0, 0, 1, 2, 0, 0, 2, 1])]));
  it('negative pads crop', () => checkNode('Pad', [r.randn([4, 5]), pads([-1, 1, 0, -2])]));
  it('reflect', () => checkNode('Pad', [r.randn([1, 2, 4, 3]), pads([0, 0, 2, 1, 0, 0, 3, 2])], { mode: 'reflect' }));
  it('edge', () => checkNode('Pad', [r.randn([3, 4]), pads([2, 3, 1, 4])], { mode: 'edge' }));
  it('wrap (opset 19)', () => checkNode('Pad', [r.randn([3, 4]), pads([2, 3, 1, 4])], { mode: 'wrap' }, { opset: 19 }));
  it('with axes input (negative axis)', () => checkNode('Pad', [r.randn([2, 3, 4]), pads([1, 2]), null, init(i64([1], [-1]))], { mode: 'edge' }));
  it('int64 constant', () => checkNode('Pad', [r.ints([2, 2], 0, 9), pads([1, 1, 1, 1]), init(i64([], [-1]))]));
});
