/**
 * Structural tests for the VAE passes: lower-conv (passes/lower-conv.ts) and fuse-norms
 * (passes/fuse-norms.ts). Each rewrite keeps what the graph computes (reference executor, before
 * vs after) and the output names; graphs outside the patterns stay as they were. The tiny VAE
 * fixtures come out with no ONNX Conv, InstanceNormalization, ReduceL2, Resize or GatherND left.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Graph } from '../compiler/ir/graph.ts';
import type { Inferred } from '../compiler/ir/infer.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { fuseNorms } from '../passes/fuse-norms.ts';
import { lowerConv } from '../passes/lower-conv.ts';
import type { Pass } from '../passes/pass.ts';
import { runPipeline } from '../passes/pipeline.ts';
import {
  type GraphSpec, applyPass, buildGraph, expectSameResults, expectTopologicallySorted, floats, ints, only, opsOf, randomInputs, randomTensor,
} from './helpers/graph.ts';
import { tinyDir } from './helpers/fixtures.ts';

function expectRewritten(pass: Pass, g: Inferred, rule: string, times = 1): Graph {
  const { after, report } = applyPass(pass, g);
  expect(report.rewrites[rule]).toBe(times);
  expectTopologicallySorted(after.graph);
  expect(after.graph.outputs).toEqual(g.graph.outputs);
  for (const o of g.graph.outputs) expect(after.graph.types.get(o)).toEqual(g.graph.types.get(o));
  expectSameResults(g.graph, after.graph, 5, { inputs: randomInputs(g.graph, 7), tolerance: 1e-6 });
  return after.graph;
}

function expectUntouched(pass: Pass, g: Inferred): void {
  const { after, report } = applyPass(pass, g);
  expect(Object.values(report.rewrites).every((n) => n === 0)).toBe(true);
  expect(opsOf(after.graph)).toEqual(opsOf(g.graph));
}

const conv2d = (opts: { attrs?: Record<string, number[] | number>; w?: number[]; x?: number[] } = {}): GraphSpec => ({
  inputs: { x: ['float32', opts.x ?? [1, 8, 6, 8]] },
  constants: { w: randomTensor(opts.w ?? [4, 8, 3, 3], 1, 'float32', 0.2), b: randomTensor([4], 2) },
  nodes: [['Conv', ['x', 'w', 'b'], ['y'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3], ...opts.attrs }]],
  outputs: ['y'],
});

describe('lower-conv', () => {
  it('a 2-D conv becomes FusedConv reading an OHWI weight prepared at load time', () => {
    const after = expectRewritten(lowerConv, buildGraph(conv2d()), 'Conv => FusedConv');
    const fc = only(after, 'FusedConv');
    expect(fc.inputs[0]).toBe('x');
    const t = after.nodes.find((n) => n.outputs[0] === fc.inputs[1])!;
    expect([t.op, t.inputs[0], t.attrs.perm]).toEqual(['Transpose', 'w', [0, 2, 3, 1]]);
    expect((after.types.get(fc.inputs[1]) as unknown as { shape: number[] }).shape).toEqual([4, 3, 3, 8]);
    expect(fc.body!.nodes.map((n) => n.op)).toEqual(['Transpose', 'Conv']);
    expect(fc.attrs.upsample).toBe(1);
  });

  it('a zero Pad and a 3-D causal conv over one frame reduce to a 2-D conv on the last temporal tap', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 8, 1, 6, 8]] },
      constants: { w: randomTensor([4, 8, 3, 3, 3], 1, 'float32', 0.2), b: randomTensor([4], 2), p: ints([0, 0, 2, 1, 1, 0, 0, 0, 1, 1]) },
      nodes: [['Pad', ['x', 'p'], ['xp'], { mode: 'constant' }], ['Conv', ['xp', 'w', 'b'], ['y'], { pads: [0, 0, 0, 0, 0, 0], kernel_shape: [3, 3, 3] }]],
      outputs: ['y'],
    });
    const after = expectRewritten(lowerConv, g, '3-D conv over one frame => 2-D');
    expect(opsOf(after)).not.toContain('Pad');
    const gather = only(after, 'Gather');
    expect(after.constants.get(gather.inputs[1])?.source).toMatchObject({ kind: 'inline' });
    expect((after.constants.get(gather.inputs[1])!.source as { tensor: Tensor }).tensor.toNumbers()).toEqual([2]);
    expect(only(after, 'FusedConv').body!.nodes.find((n) => n.op === 'Conv')!.attrs.pads).toEqual([1, 1, 1, 1]);
  });

  it('a 3-D conv with the causal pad in its own pads (an optimised export) reduces the same way', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 8, 1, 6, 8]] },
      constants: { w: randomTensor([4, 8, 3, 3, 3], 1, 'float32', 0.2) },
      nodes: [['Conv', ['x', 'w'], ['y'], { pads: [2, 1, 1, 0, 1, 1], kernel_shape: [3, 3, 3] }]],
      outputs: ['y'],
    });
    expectRewritten(lowerConv, g, '3-D conv over one frame => 2-D');
  });

  it('a nearest 2x Resize read only by the conv folds into it', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 8, 3, 4]] },
      constants: { w: randomTensor([4, 8, 3, 3], 1, 'float32', 0.2), b: randomTensor([4], 2), s: floats([1, 1, 2, 2]) },
      nodes: [
        ['Resize', ['x', '', 's'], ['xu'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }],
        ['Conv', ['xu', 'w', 'b'], ['y'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }],
      ],
      outputs: ['y'],
    });
    const after = expectRewritten(lowerConv, g, 'Resize + Conv => FusedConv');
    expect(opsOf(after)).not.toContain('Resize');
    expect(only(after, 'FusedConv').attrs.upsample).toBe(2);
  });

  /** bf16 x -> f32 -> [H,W,1,C] -> GatherND(idx) -> back -> bf16 -> conv, as PyTorch exports nearest upsampling. */
  const gathered = (idx: number[]): GraphSpec => ({
    inputs: { x: ['bfloat16', [1, 8, 3, 4]] },
    constants: { w: randomTensor([4, 8, 3, 3], 1, 'bfloat16', 0.2), idx: ints(idx, [6, 8, 2]) },
    nodes: [
      ['Cast', ['x'], ['xf'], { to: 1 }],
      ['Transpose', ['xf'], ['t1'], { perm: [2, 3, 0, 1] }],
      ['GatherND', ['t1', 'idx'], ['g'], { batch_dims: 0 }],
      ['Transpose', ['g'], ['t2'], { perm: [2, 3, 0, 1] }],
      ['Cast', ['t2'], ['xu'], { to: 16 }],
      ['Conv', ['xu', 'w'], ['y'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }],
    ],
    outputs: ['y'],
  });
  const nearest = Array.from({ length: 6 * 8 }, (_, k) => [Math.floor(Math.floor(k / 8) / 2), Math.floor((k % 8) / 2)]).flat();

  it('an index-gather nearest upsampling (and its exact cast pair) becomes part of the conv', () => {
    const after = expectRewritten(lowerConv, buildGraph(gathered(nearest)), 'gathered nearest upsampling => Resize');
    expect(opsOf(after).filter((op) => ['Cast', 'Transpose', 'GatherND', 'Resize'].includes(op))).toEqual(['Transpose']); // the weight's
    const fc = only(after, 'FusedConv');
    expect([fc.inputs[0], fc.attrs.upsample]).toEqual(['x', 2]);
  });

  it('a gather whose indices are not a nearest upsampling stays', () => {
    const idx = nearest.slice();
    idx[5] = 3;
    const { after, report } = applyPass(lowerConv, buildGraph(gathered(idx)));
    expect(report.rewrites['gathered nearest upsampling => Resize']).toBe(0);
    expect(opsOf(after.graph)).toContain('GatherND');
  });

  it('leaves strided, grouped and multi-frame convolutions as ONNX Conv', () => {
    expectUntouched(lowerConv, buildGraph(conv2d({ attrs: { strides: [2, 2] } })));
    expectUntouched(lowerConv, buildGraph(conv2d({ attrs: { group: 2 }, w: [4, 4, 3, 3] })));
    expectUntouched(lowerConv, buildGraph({
      inputs: { x: ['float32', [1, 8, 2, 6, 8]] },
      constants: { w: randomTensor([4, 8, 3, 3, 3], 1) },
      nodes: [['Conv', ['x', 'w'], ['y'], { pads: [2, 1, 1, 0, 1, 1], kernel_shape: [3, 3, 3] }]],
      outputs: ['y'],
    }));
  });

  it('keeps a Pad that does not pad with zeros, and a Resize that another node also reads', () => {
    const padded = buildGraph({
      inputs: { x: ['float32', [1, 8, 6, 8]] },
      constants: { w: randomTensor([4, 8, 3, 3], 1, 'float32', 0.2), p: ints([0, 0, 1, 1, 0, 0, 1, 1]), v: floats([5], []) },
      nodes: [['Pad', ['x', 'p', 'v'], ['xp'], { mode: 'constant' }], ['Conv', ['xp', 'w'], ['y'], { kernel_shape: [3, 3] }]],
      outputs: ['y'],
    });
    expect(opsOf(expectRewritten(lowerConv, padded, 'Conv => FusedConv'))).toContain('Pad');
    const shared = buildGraph({
      inputs: { x: ['float32', [1, 8, 3, 4]] },
      constants: { w: randomTensor([4, 8, 3, 3], 1, 'float32', 0.2), s: floats([1, 1, 2, 2]) },
      nodes: [
        ['Resize', ['x', '', 's'], ['xu'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }],
        ['Conv', ['xu', 'w'], ['y'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }],
        ['Relu', ['xu'], ['z']],
      ],
      outputs: ['y', 'z'],
    });
    const after = expectRewritten(lowerConv, shared, 'Conv => FusedConv');
    expect(opsOf(after)).toContain('Resize');
    expect(only(after, 'FusedConv').attrs.upsample).toBe(1);
  });
});

/** Reshape -> InstanceNorm over 2 groups -> Reshape -> (x gamma + beta) -> SiLU. */
const groupNorm = (extra: GraphSpec['nodes'] = [], outputs = ['z']): GraphSpec => ({
  inputs: { x: ['float32', [1, 8, 4, 4]] },
  constants: {
    s1: ints([1, 2, 64]), s2: ints([1, 8, 4, 4]), one: floats([1, 1]), zero: floats([0, 0]),
    gamma: randomTensor([8, 1, 1], 3), beta: randomTensor([8, 1, 1], 4),
  },
  nodes: [
    ['Reshape', ['x', 's1'], ['r']], ['InstanceNormalization', ['r', 'one', 'zero'], ['n'], { epsilon: 1e-6 }], ['Reshape', ['n', 's2'], ['m']],
    ['Mul', ['m', 'gamma'], ['a']], ['Add', ['a', 'beta'], ['y']], ['dc.Silu', ['y'], ['z']], ...extra,
  ],
  outputs,
});

/** [Cast] -> ReduceL2 over channels -> Clip -> Expand -> Div -> scale x gamma + bias -> SiLU. */
const channelNorm = (opts: { cast?: boolean; axis?: number } = {}): GraphSpec => ({
  inputs: { x0: [opts.cast ? 'bfloat16' : 'float32', [1, 8, 1, 4, 4]] },
  constants: {
    axes: ints([opts.axis ?? 1]), eps: floats([1e-12], []), shape: ints([1, 8, 1, 4, 4]), scale: floats([2.828], []),
    gamma: randomTensor([8, 1, 1, 1], 3), bias: floats([0.5], []),
  },
  nodes: [
    ...(opts.cast ? [['Cast', ['x0'], ['x'], { to: 1 }] as GraphSpec['nodes'][number]] : [['Identity', ['x0'], ['x']] as GraphSpec['nodes'][number]]),
    ['ReduceL2', ['x', 'axes'], ['nrm'], { keepdims: 1 }], ['Clip', ['nrm', 'eps'], ['c']], ['Expand', ['c', 'shape'], ['e']], ['Div', ['x', 'e'], ['d']],
    ['Mul', ['d', 'scale'], ['m1']], ['Mul', ['m1', 'gamma'], ['m2']], ['Add', ['m2', 'bias'], ['a']], ['dc.Silu', ['a'], ['z']],
  ],
  outputs: ['z'],
});

describe('fuse-norms', () => {
  it('GroupNorm as exported (Reshape, InstanceNorm, Reshape) and its affine + SiLU become one group-norm kernel', () => {
    const after = expectRewritten(fuseNorms, buildGraph(groupNorm()), 'GroupNorm (InstanceNorm on groups) + affine => FusedKernel');
    const k = only(after, 'FusedKernel');
    expect(after.nodes).toHaveLength(1);
    expect(k.attrs.kernel).toBe('group-norm');
    expect(k.attrs.ops).toEqual(['Reshape', 'InstanceNormalization', 'Reshape', 'Mul', 'Add', 'Silu']);
    expect(k.inputs).toEqual(['x', 'one', 'zero', 'gamma', 'beta']);
  });

  it('the tail stops at an operand that is not a scalar or per-channel vector, and at a value read twice', () => {
    const g = buildGraph({ ...groupNorm([['Add', ['z', 'x'], ['w']]], ['w']) });
    const after = expectRewritten(fuseNorms, g, 'GroupNorm (InstanceNorm on groups) + affine => FusedKernel');
    expect(opsOf(after)).toEqual(['FusedKernel', 'Add']);
    const twice = buildGraph({ ...groupNorm([['Relu', ['y'], ['q']]], ['z', 'q']) });
    const k = only(expectRewritten(fuseNorms, twice, 'GroupNorm (InstanceNorm on groups) + affine => FusedKernel'), 'FusedKernel');
    expect(k.attrs.ops).toEqual(['Reshape', 'InstanceNormalization', 'Reshape', 'Mul', 'Add']);
  });

  it("Qwen-Image's ReduceL2 norm over channels and its tail become one channel-norm kernel, without the Expand", () => {
    const after = expectRewritten(fuseNorms, buildGraph(channelNorm()), 'RMS norm over channels (ReduceL2) + affine => FusedKernel');
    const k = only(after, 'FusedKernel');
    expect(k.attrs.kernel).toBe('channel-norm');
    expect(k.attrs.ops).toEqual(['ReduceL2', 'Clip', 'Div', 'Mul', 'Mul', 'Add', 'Silu']);
    expect(opsOf(after)).not.toContain('Expand');
  });

  it('a Cast to f32 read only by the norm joins it (the kernel reads bf16)', () => {
    const after = expectRewritten(fuseNorms, buildGraph(channelNorm({ cast: true })), 'RMS norm over channels (ReduceL2) + affine => FusedKernel');
    const k = only(after, 'FusedKernel');
    expect(k.inputs[0]).toBe('x0');
    expect(k.attrs.ops).toEqual(['Cast', 'ReduceL2', 'Clip', 'Div', 'Mul', 'Mul', 'Add', 'Silu']);
  });

  it('leaves a ReduceL2 over another axis and an InstanceNorm read twice', () => {
    expectUntouched(fuseNorms, buildGraph(channelNorm({ axis: 2 })));
    expectUntouched(fuseNorms, buildGraph({ ...groupNorm([['Relu', ['n'], ['q']]], ['z', 'q']) }));
  });
});

describe('tiny VAE decoders through the pipeline', () => {
  it.each([
    ['flux2_vae_decoder', { FusedConv: 17, 'group-norm': 14, upsample: 1 }],
    ['qwen_image_vae_decoder', { FusedConv: 18, 'channel-norm': 14, upsample: 1 }],
  ] as const)('%s: every convolution, norm and upsampling is in a VAE kernel', (name, counts) => {
    const g = runPipeline(inferTypes(importOnnx(join(tinyDir(name), 'model.onnx')).graph)).graph;
    for (const op of ['Conv', 'InstanceNormalization', 'ReduceL2', 'Resize', 'GatherND', 'Pad']) expect(opsOf(g), op).not.toContain(op);
    const convs = g.nodes.filter((n) => n.op === 'FusedConv');
    expect(convs).toHaveLength(counts.FusedConv);
    expect(convs.filter((n) => n.attrs.upsample === 2)).toHaveLength(counts.upsample);
    const kind = 'group-norm' in counts ? 'group-norm' : 'channel-norm';
    expect(g.nodes.filter((n) => n.attrs.kernel === kind)).toHaveLength('group-norm' in counts ? counts['group-norm'] : counts['channel-norm']);
  });
});
