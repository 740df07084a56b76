/**
 * Conformance of reductions and normalisations (compiler/ops/norm.ts) against onnxruntime-node:
 * Softmax on axes 0/1/-1, LayerNormalization (axis -1 and 1, bias, mean/inv-std outputs),
 * RMSNormalization (opset 23), InstanceNormalization, ReduceMean/Sum/Max/L2 with keepdims 0/1,
 * negative axes, axes omitted and noop_with_empty_axes.
 */
import { describe, it } from 'vitest';
import { checkNode, float, i64, init, Rng } from '../helpers/onnx-model.ts';

const r = new Rng(2024);

describe('Softmax', () => {
  for (const axis of [0, 1, -1, 2]) {
    it(`axis ${axis}`, () => checkNode('Softmax', [r.randn([3, 4, 5])], { axis }));
  }
  it('default axis (-1), large logits', () => checkNode('Softmax', [r.randn([2, 6], -80, 80)]));
  it('axis -1 with -Inf entries', () => checkNode('Softmax', [{ ...r.randn([2, 3]), values: [0, -Infinity, 1, -Infinity, 2, 2] }]));
});

describe('LayerNormalization', () => {
  it('axis -1 with bias', () => checkNode('LayerNormalization', [r.randn([2, 3, 8]), init(r.randn([8])), init(r.randn([8]))]));
  it('axis -1 without bias, epsilon', () => checkNode('LayerNormalization', [r.randn([4, 16], -5, 20), r.randn([16])], { epsilon: float(1e-3) }));
  it('axis 1 with bias over [C,H,W]', () => checkNode('LayerNormalization',
    [r.randn([2, 3, 4, 5]), init(r.randn([3, 4, 5])), init(r.randn([3, 4, 5]))], { axis: 1 }));
  it('axis 1 with broadcast scale [1,1,5]', () => checkNode('LayerNormalization',
    [r.randn([2, 3, 4, 5]), init(r.randn([1, 1, 5])), init(r.randn([5]))], { axis: -3 }));
  it('mean and inv-std-dev outputs', () => checkNode('LayerNormalization',
    [r.randn([2, 3, 6]), init(r.randn([3, 6])), init(r.randn([3, 6]))], { axis: 1 }, { outputs: 3 }));
});

describe('RMSNormalization (opset 23)', () => {
  const o = { opset: 23 };
  it('axis -1', () => checkNode('RMSNormalization', [r.randn([2, 5, 8]), init(r.randn([8]))], {}, o));
  it('axis 1 with epsilon', () => checkNode('RMSNormalization', [r.randn([2, 3, 4]), init(r.randn([3, 4]))], { axis: 1, epsilon: float(1e-2) }, o));
  it('per-head qk-norm shape', () => checkNode('RMSNormalization', [r.randn([1, 4, 6, 8]), init(r.randn([8]))], { axis: -1, epsilon: float(1e-6) }, o));
});

describe('InstanceNormalization', () => {
  it('4-D', () => checkNode('InstanceNormalization', [r.randn([2, 3, 4, 5]), init(r.randn([3])), init(r.randn([3]))]));
  it('3-D with epsilon', () => checkNode('InstanceNormalization', [r.randn([1, 4, 7], 2, 3), r.randn([4]), r.randn([4])], { epsilon: float(1e-2) }));
});

describe('Reduce*', () => {
  const axes = (a: number[]) => init(i64([a.length], a));
  for (const op of ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceL2']) {
    describe(op, () => {
      const x = () => r.randn([2, 3, 4, 5]);
      it('axes [1,3] keepdims 1', () => checkNode(op, [x(), axes([1, 3])]));
      it('axes [-1] keepdims 0', () => checkNode(op, [x(), axes([-1])], { keepdims: 0 }));
      it('axes [0,-2] keepdims 0', () => checkNode(op, [x(), axes([0, -2])], { keepdims: 0 }));
      it('no axes: reduce all, keepdims 1 and 0', async () => {
        await checkNode(op, [x()]);
        await checkNode(op, [x()], { keepdims: 0 });
      });
      it('empty axes + noop_with_empty_axes=1 is identity', async () => {
        await checkNode(op, [x()], { noop_with_empty_axes: 1 });
        await checkNode(op, [x(), axes([])], { noop_with_empty_axes: 1 });
      });
      it('empty axes + noop_with_empty_axes=0 reduces all', () => checkNode(op, [x(), axes([])], { keepdims: 0 }));
    });
  }
  it('ReduceSum and ReduceMax on int64', async () => {
    await checkNode('ReduceSum', [r.ints([3, 4], -100, 100), axes([1])], { keepdims: 0 });
    await checkNode('ReduceMax', [r.ints([3, 4], -100, 100), axes([0])]);
  });
  it('ReduceMean attribute axes (opset 13)', () => checkNode('ReduceMean', [r.randn([2, 3, 4])], { axes: [-1, 0], keepdims: 0 }, { opset: 13 }));
});
