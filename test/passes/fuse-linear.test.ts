/**
 * Structural tests for fuse-linear (passes/fuse-linear.ts): dc.Linear projections of one input
 * become Concat(weights) + one Linear + Split, keeping the original output names and results;
 * projections that differ in input, weight dtype, layout, bias presence, or whose weight is not a
 * stored constant stay separate.
 */
import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import { fuseLinear } from '../../passes/fuse-linear.ts';
import { type GraphSpec, type NodeSpec, applyPass, buildGraph, expectSameResults, expectTopologicallySorted, opsOf, randomTensor, only, constantValues } from '../helpers/graph.ts';

const RULE = 'projections sharing an input => one Linear';
const S = 4, K = 8;



/** Same output types, same values on the reference executor; graph still sorted. */
function expectSame(before: Graph, after: Graph): void {
  expectTopologicallySorted(after);
  expect(after.outputs).toEqual(before.outputs);
  for (const o of before.outputs) expect(after.types.get(o)).toEqual(before.types.get(o));
  expectSameResults(before, after, 5);
}

function expectUntouched(g: Inferred): void {
  const { after, report } = applyPass(fuseLinear, g);
  expect(report.rewrites[RULE]).toBe(0);
  expect(opsOf(after.graph)).toEqual(opsOf(g.graph));
  expect(after.graph.nodes.map((n) => n.inputs)).toEqual(g.graph.nodes.map((n) => n.inputs));
  expectSame(g.graph, after.graph);
}

/** Three projections of x to N = 6, 4, 5 (weights [N, K] for transB = 1, else [K, N]). */
function threeProjections(opts: { transB: 0 | 1; bias: boolean; biasShapes?: number[][] }): GraphSpec {
  const sizes = [6, 4, 5];
  const constants: Record<string, Tensor> = {};
  const nodes: NodeSpec[] = [];
  sizes.forEach((n, i) => {
    constants[`W${i}`] = randomTensor(opts.transB ? [n, K] : [K, n], 10 + i, 'float32', 0.3);
    if (opts.bias) constants[`b${i}`] = randomTensor(opts.biasShapes?.[i] ?? [n], 20 + i);
    nodes.push(['dc.Linear', ['x', `W${i}`, ...(opts.bias ? [`b${i}`] : [])], [`y${i}`], { transB: opts.transB }]);
  });
  // y0 is read by a later node, y1 and y2 are graph outputs.
  nodes.push(['Sigmoid', ['y0'], ['s0']]);
  return { inputs: { x: ['float32', [1, S, K]] }, constants, nodes, outputs: ['s0', 'y1', 'y2'] };
}

describe('fuse-linear: projections of one input => Concat + Linear + Split', () => {
  it('three Linears, transB = 1, no bias', () => {
    const g = buildGraph(threeProjections({ transB: 1, bias: false }));
    const { after, report } = applyPass(fuseLinear, g);
    expect(report.rewrites[RULE]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['Concat', 'Linear', 'Split', 'Sigmoid']);
    const concat = only(after.graph, 'Concat');
    expect(concat.inputs).toEqual(['W0', 'W1', 'W2']);
    expect(concat.attrs.axis).toBe(0);
    expect(after.graph.types.get(concat.outputs[0])).toMatchObject({ shape: [15, K] });
    const linear = only(after.graph, 'Linear');
    expect(linear.domain).toBe('dc');
    expect(linear.inputs).toEqual(['x', concat.outputs[0]]);
    expect(linear.attrs.transB).toBe(1);
    const split = only(after.graph, 'Split');
    expect(split.inputs[0]).toBe(linear.outputs[0]);
    expect(constantValues(after.graph, split.inputs[1])).toEqual([6, 4, 5]);
    expect(split.outputs).toEqual(['y0', 'y1', 'y2']);
    expect([-1, 2]).toContain(split.attrs.axis);
    expect(after.graph.nodes[3].inputs).toEqual(['y0']);
    expectSame(g.graph, after.graph);
  });

  it('three Linears, transB = 0, with biases ([N] and [1, N]): weights concatenated on axis 1, biases flattened and concatenated', () => {
    const g = buildGraph(threeProjections({ transB: 0, bias: true, biasShapes: [[6], [1, 4], [5]] }));
    const { after, report } = applyPass(fuseLinear, g);
    expect(report.rewrites[RULE]).toBe(1);
    expect(opsOf(after.graph).filter((op) => op !== 'Reshape')).toEqual(['Concat', 'Concat', 'Linear', 'Split', 'Sigmoid']);
    const linear = only(after.graph, 'Linear');
    expect(linear.attrs.transB ?? 0).toBe(0);
    expect(linear.inputs).toHaveLength(3);
    expect(linear.inputs[0]).toBe('x');
    const weight = after.graph.nodes.find((n) => n.outputs[0] === linear.inputs[1])!;
    expect(weight).toMatchObject({ op: 'Concat', inputs: ['W0', 'W1', 'W2'], attrs: { axis: 1 } });
    expect(after.graph.types.get(linear.inputs[1])).toMatchObject({ shape: [K, 15] });
    expect(after.graph.types.get(linear.inputs[2])).toMatchObject({ shape: [15] });
    expect(only(after.graph, 'Split').outputs).toEqual(['y0', 'y1', 'y2']);
    expectSame(g.graph, after.graph);
  });

  it('three Linears, transB = 0, no bias', () => {
    const g = buildGraph(threeProjections({ transB: 0, bias: false }));
    const { after, report } = applyPass(fuseLinear, g);
    expect(report.rewrites[RULE]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['Concat', 'Linear', 'Split', 'Sigmoid']);
    expect(only(after.graph, 'Concat')).toMatchObject({ inputs: ['W0', 'W1', 'W2'], attrs: { axis: 1 } });
    expect(only(after.graph, 'Linear').inputs).toHaveLength(2);
    expect(only(after.graph, 'Split').outputs).toEqual(['y0', 'y1', 'y2']);
    expectSame(g.graph, after.graph);
  });

  it('three Linears, transB = 1, with biases', () => {
    const g = buildGraph(threeProjections({ transB: 1, bias: true }));
    const { after, report } = applyPass(fuseLinear, g);
    expect(report.rewrites[RULE]).toBe(1);
    expect(after.graph.nodes.filter((n) => n.op === 'Linear')).toHaveLength(1);
    expect(only(after.graph, 'Split').outputs).toEqual(['y0', 'y1', 'y2']);
    expectSame(g.graph, after.graph);
  });

  it('the weight concatenation is computed from constants only (a load-time node)', () => {
    const g = buildGraph(threeProjections({ transB: 1, bias: true }));
    const { after } = applyPass(fuseLinear, g);
    const linear = only(after.graph, 'Linear');
    const producers = new Map(after.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    const fromConstants = (x: string): boolean => after.graph.constants.has(x) || (producers.get(x)?.inputs.every(fromConstants) ?? false);
    expect(fromConstants(linear.inputs[1])).toBe(true);
    expect(fromConstants(linear.inputs[2])).toBe(true);
  });

  it('two layouts on one input: each layout group is fused on its own', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, K]] },
      constants: {
        A0: randomTensor([3, K], 1), A1: randomTensor([5, K], 2), B0: randomTensor([K, 2], 3), B1: randomTensor([K, 7], 4),
      },
      nodes: [
        ['dc.Linear', ['x', 'A0'], ['a0'], { transB: 1 }],
        ['dc.Linear', ['x', 'B0'], ['b0']],
        ['dc.Linear', ['x', 'A1'], ['a1'], { transB: 1 }],
        ['dc.Linear', ['x', 'B1'], ['b1'], { transB: 0 }],
      ],
      outputs: ['a0', 'b0', 'a1', 'b1'],
    });
    const { after, report } = applyPass(fuseLinear, g);
    expect(report.rewrites[RULE]).toBe(2);
    const linears = after.graph.nodes.filter((n) => n.op === 'Linear');
    expect(linears.map((n) => n.attrs.transB ?? 0).sort()).toEqual([0, 1]);
    const splits = after.graph.nodes.filter((n) => n.op === 'Split').map((n) => n.outputs);
    expect(splits).toEqual(expect.arrayContaining([['a0', 'a1'], ['b0', 'b1']]));
    expectSame(g.graph, after.graph);
  });

  it('only the matching projections merge; the odd one stays as it was', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, K]] },
      constants: { W0: randomTensor([3, K], 1), W1: randomTensor([5, K], 2), W2: randomTensor([K, 4], 3) },
      nodes: [
        ['dc.Linear', ['x', 'W0'], ['y0'], { transB: 1 }],
        ['dc.Linear', ['x', 'W2'], ['y2'], { transB: 0 }],
        ['dc.Linear', ['x', 'W1'], ['y1'], { transB: 1 }],
      ],
      outputs: ['y0', 'y1', 'y2'],
    });
    const { after, report } = applyPass(fuseLinear, g);
    expect(report.rewrites[RULE]).toBe(1);
    const linears = after.graph.nodes.filter((n) => n.op === 'Linear');
    expect(linears).toHaveLength(2);
    expect(linears.find((n) => n.outputs[0] === 'y2')?.inputs).toEqual(['x', 'W2']);
    expect(only(after.graph, 'Split').outputs).toEqual(['y0', 'y1']);
    expectSame(g.graph, after.graph);
  });

  describe('must not merge', () => {
    const pair = (a: NodeSpec, b: NodeSpec, extra: Partial<GraphSpec> = {}): Inferred => buildGraph({
      inputs: { x: ['float32', [1, S, K]], ...extra.inputs },
      constants: { W0: randomTensor([6, K], 1), W1: randomTensor([4, K], 2), b0: randomTensor([6], 3), b1: randomTensor([4], 4), ...extra.constants },
      nodes: [...(extra.nodes ?? []), a, b],
      outputs: [a[2][0], b[2][0]],
    });

    it('different inputs', () => {
      expectUntouched(pair(['dc.Linear', ['x', 'W0'], ['y0'], { transB: 1 }], ['dc.Linear', ['x2', 'W1'], ['y1'], { transB: 1 }], {
        inputs: { x2: ['float32', [1, S, K]] },
      }));
    });

    it('weights of different dtype (float32 and bfloat16)', () => {
      expectUntouched(pair(['dc.Linear', ['x', 'W0'], ['y0'], { transB: 1 }], ['dc.Linear', ['x', 'Wh'], ['y1'], { transB: 1 }], {
        constants: { Wh: randomTensor([4, K], 5, 'bfloat16') },
      }));
    });

    it('transB mismatch', () => {
      expectUntouched(pair(['dc.Linear', ['x', 'W0'], ['y0'], { transB: 1 }], ['dc.Linear', ['x', 'Wt'], ['y1'], { transB: 0 }], {
        constants: { Wt: randomTensor([K, 4], 5) },
      }));
      // transB absent means 0: still a mismatch with transB = 1.
      expectUntouched(pair(['dc.Linear', ['x', 'W0'], ['y0'], { transB: 1 }], ['dc.Linear', ['x', 'Wt'], ['y1']], {
        constants: { Wt: randomTensor([K, 4], 5) },
      }));
    });

    it('only some with a bias', () => {
      expectUntouched(pair(['dc.Linear', ['x', 'W0', 'b0'], ['y0'], { transB: 1 }], ['dc.Linear', ['x', 'W1'], ['y1'], { transB: 1 }]));
    });

    it('a weight that is a computed value (from a graph input), not a constant', () => {
      expectUntouched(pair(['dc.Linear', ['x', 'W0'], ['y0'], { transB: 1 }], ['dc.Linear', ['x', 'Wc'], ['y1'], { transB: 1 }], {
        inputs: { w: ['float32', [4, K]] },
        nodes: [['Neg', ['w'], ['Wc']]],
      }));
    });

    it('a bias that is a computed value, not a constant', () => {
      expectUntouched(pair(['dc.Linear', ['x', 'W0', 'b0'], ['y0'], { transB: 1 }], ['dc.Linear', ['x', 'W1', 'bc'], ['y1'], { transB: 1 }], {
        inputs: { bin: ['float32', [4]] },
        nodes: [['Neg', ['bin'], ['bc']]],
      }));
    });

    it('a single projection', () => {
      expectUntouched(buildGraph({
        inputs: { x: ['float32', [1, S, K]] },
        constants: { W0: randomTensor([6, K], 1) },
        nodes: [['dc.Linear', ['x', 'W0'], ['y0'], { transB: 1 }]],
        outputs: ['y0'],
      }));
    });
  });
});
