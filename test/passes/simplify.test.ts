/**
 * Structural tests for the simplify passes: for each rule a graph it must rewrite (checked
 * before/after, and for unchanged results on the reference executor) and graphs it must leave
 * alone.
 */
import { describe, expect, it } from 'vitest';
import { castLikeToCast } from '../../passes/simplify/cast-like-to-cast.ts';
import { eliminateCommon } from '../../passes/simplify/eliminate-common.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { foldConstants } from '../../passes/simplify/fold-constants.ts';
import { lowerSequences } from '../../passes/simplify/lower-sequences.ts';
import { removeDead } from '../../passes/simplify/remove-dead.ts';
import { removeNoops } from '../../passes/simplify/remove-noops.ts';
import { applyPass, buildGraph, expectSameResults, floats, ints, opsOf } from '../helpers/graph.ts';

describe('fold-constants', () => {
  it('folds shape arithmetic feeding a Reshape into one constant', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [2, 3, 4]] },
      constants: { zero: ints([0]), minus1: ints([-1]) },
      nodes: [
        ['Shape', ['x'], ['s']],
        ['Gather', ['s', 'zero'], ['b'], { axis: 0 }],
        ['Concat', ['b', 'minus1'], ['target'], { axis: 0 }],
        ['Reshape', ['x', 'target'], ['y']],
      ],
      outputs: ['y'],
    });
    const { after, report } = applyPass(foldConstants, g);
    expect(opsOf(after.graph)).toEqual(['Reshape']);
    const target = after.graph.constants.get('target');
    expect(target?.source.kind === 'inline' && target.source.tensor.toNumbers()).toEqual([2, -1]);
    expect(report.rewrites['computed at compile time']).toBe(3);
    expectSameResults(g.graph, after.graph);
  });

  it('turns Constant nodes into constants and leaves data-dependent nodes alone', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [4]] },
      nodes: [['Constant', [], ['c'], { value_floats: [1, 2, 3, 4] }], ['Add', ['x', 'c'], ['y']]],
      outputs: ['y'],
    });
    const { after, report } = applyPass(foldConstants, g);
    expect(opsOf(after.graph)).toEqual(['Add']);
    expect(report.rewrites['constant node']).toBe(1);
    expectSameResults(g.graph, after.graph);
  });
});

describe('remove-noops', () => {
  it('drops Identity, same-type Cast, same-shape Reshape; an order-keeping Transpose becomes a Reshape', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 3, 4]] },
      constants: { shape: ints([1, 3, 4]) },
      nodes: [
        ['Identity', ['x'], ['a']],
        ['Cast', ['a'], ['b'], { to: 1 }],
        ['Reshape', ['b', 'shape'], ['c']],
        ['Transpose', ['c'], ['d'], { perm: [1, 0, 2] }], // moves only a unit dim: same element order
        ['Sigmoid', ['d'], ['e']],
        ['Transpose', ['e'], ['y'], { perm: [2, 1, 0] }], // a real transpose: stays
      ],
      outputs: ['y'],
    });
    const { after } = applyPass(removeNoops, g);
    expect(opsOf(after.graph)).toEqual(['Reshape', 'Sigmoid', 'Transpose']);
    expect(after.graph.nodes[0].inputs[0]).toBe('x');
    expect(after.graph.outputs).toEqual(['y']);
    expectSameResults(g.graph, after.graph);
  });

  it('keeps a transpose of a square matrix and a reversing slice, though types are unchanged', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [2, 2]] },
      constants: { s: ints([-1]), e: ints([-100]), a: ints([0]), st: ints([-1]) },
      nodes: [['Transpose', ['x'], ['t'], { perm: [1, 0] }], ['Slice', ['t', 's', 'e', 'a', 'st'], ['y']]],
      outputs: ['y'],
    });
    const { after, report } = applyPass(removeNoops, g);
    expect(opsOf(after.graph)).toEqual(['Transpose', 'Slice']);
    expect(Object.values(report.rewrites).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('removes a lossless bfloat16 -> float32 -> bfloat16 round trip but not a lossy one', () => {
    const g = buildGraph({
      inputs: { x: ['bfloat16', [4]], f: ['float32', [4]] },
      nodes: [
        ['Cast', ['x'], ['wide'], { to: 1 }], ['Cast', ['wide'], ['back'], { to: 16 }], ['Neg', ['back'], ['y']],
        ['Cast', ['f'], ['narrow'], { to: 16 }], ['Cast', ['narrow'], ['again'], { to: 1 }], ['Neg', ['again'], ['z']],
      ],
      outputs: ['y', 'z'],
    });
    const { after, report } = applyPass(removeNoops, g);
    expect(report.rewrites['lossless cast round trip']).toBe(1);
    expect(opsOf(after.graph)).toEqual(['Cast', 'Neg', 'Cast', 'Cast', 'Neg']);
    expect(after.graph.nodes[1].inputs).toEqual(['x']);
  });

  it('keeps the graph output name when the output itself was a no-op', () => {
    const g = buildGraph({ inputs: { x: ['float32', [3]] }, nodes: [['Neg', ['x'], ['n']], ['Identity', ['n'], ['y']]], outputs: ['y'] });
    const { after } = applyPass(removeNoops, g);
    expect(opsOf(after.graph)).toEqual(['Neg']);
    expect(after.graph.nodes[0].outputs).toEqual(['y']);
    expectSameResults(g.graph, after.graph);
  });
});

describe('lower-sequences', () => {
  it('turns SplitToSequence + SequenceAt into Split (keepdims=0 adds a Squeeze)', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [2, 3, 4]] },
      constants: { p0: ints([0], []), p2: ints([-1], []) },
      nodes: [
        ['SplitToSequence', ['x'], ['seq'], { axis: 1, keepdims: 0 }],
        ['SequenceAt', ['seq', 'p0'], ['a']],
        ['SequenceAt', ['seq', 'p2'], ['b']],
        ['Add', ['a', 'b'], ['y']],
      ],
      outputs: ['y'],
    });
    const { after } = applyPass(lowerSequences, g);
    expect(opsOf(after.graph)).toEqual(['Split', 'Squeeze', 'Squeeze', 'Squeeze', 'Add']);
    expect(after.graph.types.get('y')).toEqual({ kind: 'tensor', dtype: 'float32', shape: [2, 4] });
    expectSameResults(g.graph, after.graph);
  });

  it('handles explicit split sizes', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [6, 2]] },
      constants: { sizes: ints([1, 2, 3]), p: ints([2], []) },
      nodes: [['SplitToSequence', ['x', 'sizes'], ['seq'], { axis: 0 }], ['SequenceAt', ['seq', 'p'], ['y']]],
      outputs: ['y'],
    });
    const { after } = applyPass(lowerSequences, g);
    expect(opsOf(after.graph)).toEqual(['Split']);
    expect(after.graph.types.get('y')).toEqual({ kind: 'tensor', dtype: 'float32', shape: [3, 2] });
    expectSameResults(g.graph, after.graph);
  });
});

describe('cast-like-to-cast', () => {
  it('reads the dtype off the like-input and drops that use', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [3]], like: ['int64', [1]] },
      nodes: [['CastLike', ['x', 'like'], ['y']]],
      outputs: ['y'],
    });
    const { after } = applyPass(castLikeToCast, g);
    expect(after.graph.nodes[0]).toMatchObject({ op: 'Cast', inputs: ['x'], attrs: { to: 7 } });
    expectSameResults(g.graph, after.graph);
  });
});

describe('eliminate-common', () => {
  it('merges equal constants and equal nodes, not nodes that differ in attributes', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [2, 3]] },
      constants: { a1: floats([2]), a2: floats([2]) },
      nodes: [
        ['Mul', ['x', 'a1'], ['m1']],
        ['Mul', ['x', 'a2'], ['m2']],
        ['Softmax', ['m1'], ['s1'], { axis: 0 }],
        ['Softmax', ['m2'], ['s2'], { axis: 1 }],
        ['Add', ['s1', 's2'], ['y']],
      ],
      outputs: ['y'],
    });
    const { after, report } = applyPass(eliminateCommon, g);
    expect(report.rewrites).toEqual({ 'duplicate constant': 1, 'duplicate node': 1 });
    expect(opsOf(after.graph)).toEqual(['Mul', 'Softmax', 'Softmax', 'Add']);
    expect(after.graph.constants.size).toBe(1);
    expectSameResults(g.graph, after.graph);
  });

  it('merges large equal constants too (Qwen-Image\'s per-block [1, 4096] masks of ones), not ones one element apart', () => {
    const ones = (n: number) => Tensor.fromNumbers('bool', [1, n], new Array(n).fill(1));
    const almost = Tensor.fromNumbers('bool', [1, 4096], new Array(4096).fill(1).map((v, i) => (i === 4095 ? 0 : v)));
    const g = buildGraph({
      inputs: { x: ['float32', [1, 4096]] },
      constants: { m1: ones(4096), m2: ones(4096), m3: almost, zero: floats([0]) },
      nodes: [
        ['Where', ['m1', 'x', 'zero'], ['a']],
        ['Where', ['m2', 'x', 'zero'], ['b']],
        ['Where', ['m3', 'x', 'zero'], ['c']],
        ['Add', ['a', 'b'], ['ab']],
        ['Add', ['ab', 'c'], ['y']],
      ],
      outputs: ['y'],
    });
    const { after, report } = applyPass(eliminateCommon, g);
    expect(report.rewrites).toEqual({ 'duplicate constant': 1, 'duplicate node': 1 });
    expect([...after.graph.constants.keys()].sort()).toEqual(['m1', 'm3', 'zero']);
    expectSameResults(g.graph, after.graph);
  });
});

describe('remove-dead', () => {
  it('drops nodes and constants that no output needs', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [3]] },
      constants: { unused: floats([1, 2, 3]) },
      nodes: [['Neg', ['x'], ['y']], ['Add', ['x', 'unused'], ['dead']], ['Sqrt', ['dead'], ['dead2']]],
      outputs: ['y'],
    });
    const { after, report } = applyPass(removeDead, g);
    expect(opsOf(after.graph)).toEqual(['Neg']);
    expect(after.graph.constants.size).toBe(0);
    expect(report.rewrites['unused node']).toBe(2);
  });
});
