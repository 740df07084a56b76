/**
 * Structural tests for fuse-elementwise (passes/fuse-elementwise.ts): groups of element-wise ops and
 * last-axis row reductions become one dc.FusedKernel whose body is the group and whose outputs are
 * exactly the values something outside reads; GEMMs, attention, other shapes, non-row reductions
 * and per-tensor quantization stay outside; no grouping may create a cycle. Every result graph is
 * checked to be topologically sorted (bodies included) and to compute the same values.
 */
import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import { fuseElementwise } from '../../passes/fuse-elementwise.ts';
import { type GraphSpec, applyPass, buildGraph, expectSameResults, expectTopologicallySorted, opsOf, randomInputs, randomTensor } from '../helpers/graph.ts';

const RULE = 'element-wise group => FusedKernel';
const S = 3, D = 8;

const kernels = (g: Graph): Node[] => g.nodes.filter((n) => n.domain === 'dc' && n.op === 'FusedKernel');
const bodyOps = (n: Node): string[] => n.body!.nodes.map((b) => b.op);
/** The kernel whose body computes `value`. */
const kernelOf = (g: Graph, value: string): Node | undefined => kernels(g).find((k) => k.body!.nodes.some((b) => b.outputs.includes(value)));

/**
 * Every kernel's outputs are exactly the values of its body that the rest of the graph reads (or
 * that are graph outputs), its inputs exactly what its body reads from outside, and its body holds
 * no GEMM or attention.
 */
function expectKernelsWellFormed(g: Graph): void {
  for (const k of kernels(g)) {
    const produced = new Set(k.body!.nodes.flatMap((n) => n.outputs).filter(Boolean));
    const readOutside = [...produced].filter((v) => g.outputs.includes(v) || g.nodes.some((n) => n !== k && n.inputs.includes(v)));
    expect([...k.outputs].sort(), `outputs of kernel ${bodyOps(k)}`).toEqual(readOutside.sort());
    const reads = new Set(k.body!.nodes.flatMap((n) => n.inputs).filter((x) => x && !produced.has(x)));
    expect(new Set(k.inputs), `inputs of kernel ${bodyOps(k)}`).toEqual(reads);
    for (const b of k.body!.nodes) expect(['Linear', 'QLinear', 'FusedAttention', 'MatMul', 'Gemm', 'Conv', 'FusedKernel']).not.toContain(b.op);
  }
}

/** Runs the pass; the result is sorted, its kernels well formed, and computes the same values. */
function fuse(g: Inferred): { after: Graph; fired: number } {
  const { after, report } = applyPass(fuseElementwise, g);
  expectTopologicallySorted(after.graph);
  expectKernelsWellFormed(after.graph);
  expect(after.graph.outputs).toEqual(g.graph.outputs);
  for (const o of g.graph.outputs) expect(after.graph.types.get(o)).toEqual(g.graph.types.get(o));
  expectSameResults(g.graph, after.graph, 3, { inputs: randomInputs(g.graph, 3) });
  return { after: after.graph, fired: report.rewrites[RULE] };
}

function expectUntouched(g: Inferred): void {
  const { after, fired } = fuse(g);
  expect(fired).toBe(0);
  expect(opsOf(after)).toEqual(opsOf(g.graph));
}

describe('fuse-elementwise: element-wise groups => FusedKernel', () => {
  it('residual Add + LayerNormalization + Modulate become one kernel; the residual, also read outside, is an output', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, D]], attn: ['float32', [1, S, D]], scale: ['float32', [1, 1, D]], shift: ['float32', [1, 1, D]] },
      constants: { lnw: randomTensor([D], 1), lnb: randomTensor([D], 2), W: randomTensor([D, D], 3, 'float32', 0.3) },
      nodes: [
        ['Add', ['x', 'attn'], ['r']],
        ['LayerNormalization', ['r', 'lnw', 'lnb'], ['n'], { axis: -1, epsilon: 1e-6 }],
        ['dc.Modulate', ['n', 'scale', 'shift'], ['m']],
        ['dc.Linear', ['m', 'W'], ['l'], { transB: 1 }],
        ['Add', ['r', 'l'], ['z']],
      ],
      outputs: ['z'],
    });
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    expect(opsOf(after)).toEqual(['FusedKernel', 'Linear', 'Add']);
    const [k] = kernels(after);
    expect(bodyOps(k)).toEqual(['Add', 'LayerNormalization', 'Modulate']);
    expect(k.body!.nodes.map((n) => n.outputs[0])).toEqual(['r', 'n', 'm']);
    expect([...k.outputs].sort()).toEqual(['m', 'r']); // n is only read inside
    expect(new Set(k.inputs)).toEqual(new Set(['x', 'attn', 'lnw', 'lnb', 'scale', 'shift']));
    expect(after.types.get('r')).toEqual(g.graph.types.get('r'));
    expect(after.types.get('m')).toEqual(g.graph.types.get('m'));
  });

  it('a value that is a graph output and also read inside the kernel is an output', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
      nodes: [['Add', ['x', 'y'], ['r']], ['Sigmoid', ['r'], ['s']], ['Mul', ['s', 'r'], ['m']]],
      outputs: ['r', 'm'],
    });
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    const [k] = kernels(after);
    expect(bodyOps(k)).toEqual(['Add', 'Sigmoid', 'Mul']);
    expect([...k.outputs].sort()).toEqual(['m', 'r']);
  });

  it('broadcast inputs from outside ([1, 1, D] shift and scale, a scalar) are allowed', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, D]], scale: ['float32', [1, 1, D]], shift: ['float32', [1, 1, D]] },
      constants: { half: randomTensor([], 4) },
      nodes: [
        ['dc.Silu', ['x'], ['a']],
        ['dc.Modulate', ['a', 'scale', 'shift'], ['m']],
        ['Mul', ['m', 'half'], ['y']],
      ],
      outputs: ['y'],
    });
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    expect(opsOf(after)).toEqual(['FusedKernel']);
    expect(bodyOps(kernels(after)[0])).toEqual(['Silu', 'Modulate', 'Mul']);
    expect(kernels(after)[0].outputs).toEqual(['y']);
  });

  it('Softmax over the last axis is a row reduction: it joins', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
      nodes: [['Add', ['x', 'y'], ['a']], ['Softmax', ['a'], ['s'], { axis: -1 }], ['Mul', ['s', 'y'], ['t']]],
      outputs: ['t'],
    });
    const { after } = fuse(g);
    expect(kernels(after).map(bodyOps)).toEqual([['Add', 'Softmax', 'Mul']]);
  });

  it('an fp8 activation Quantize (axis -1) joins its producer\'s group; q and its scale leave the kernel', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
      constants: { W: randomTensor([4, D], 5, 'float32', 0.3) },
      nodes: [
        ['Add', ['x', 'y'], ['h']],
        ['dc.Silu', ['h'], ['s']],
        ['dc.Quantize', ['s'], ['q', 'qs'], { format: 'fp8', axis: -1 }],
        ['dc.Quantize', ['W'], ['wq', 'ws'], { format: 'fp8', axis: 1 }],
        ['dc.QLinear', ['q', 'qs', 'wq', 'ws'], ['o'], { transB: 1, format: 'fp8', to: 1 }],
      ],
      outputs: ['o'],
    });
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    const k = kernelOf(after, 'q')!;
    expect(bodyOps(k)).toEqual(['Add', 'Silu', 'Quantize']);
    expect([...k.outputs].sort()).toEqual(['q', 'qs']);
    expect(after.types.get('q')).toMatchObject({ dtype: 'float8e4m3fn', shape: [1, S, D] });
    expect(after.types.get('qs')).toMatchObject({ dtype: 'float32', shape: [1, S, 1] });
    // The weight Quantize (axis 1, a load-time node on a constant) is not in any kernel.
    expect(kernelOf(after, 'wq')).toBeUndefined();
  });

  describe('must not fuse', () => {
    it('across a dc.Linear: the groups before and after the GEMM are separate kernels', () => {
      const g = buildGraph({
        inputs: { x: ['float32', [1, S, D]] },
        constants: { W: randomTensor([D, D], 1, 'float32', 0.3) },
        nodes: [
          ['Sigmoid', ['x'], ['a1']],
          ['Neg', ['a1'], ['a2']],
          ['dc.Linear', ['a2', 'W'], ['l'], { transB: 1 }],
          ['Tanh', ['l'], ['b1']],
          ['Mul', ['b1', 'x'], ['b2']],
        ],
        outputs: ['b2'],
      });
      const { after } = fuse(g);
      expect(opsOf(after)).toEqual(['FusedKernel', 'Linear', 'FusedKernel']);
      expect(kernels(after).map(bodyOps)).toEqual([['Sigmoid', 'Neg'], ['Tanh', 'Mul']]);
    });

    it('across a FusedAttention', () => {
      const H = 2, Dh = 4;
      const g = buildGraph({
        inputs: { qin: ['float32', [1, H, S, Dh]], k: ['float32', [1, H, S, Dh]], v: ['float32', [1, H, S, Dh]] },
        nodes: [
          ['Sigmoid', ['qin'], ['a1']],
          ['Neg', ['a1'], ['q']],
          ['dc.FusedAttention', ['', 'q', 'k', 'v'], ['o']],
          ['Add', ['o', 'a1'], ['b1']],
          ['Tanh', ['b1'], ['b2']],
        ],
        outputs: ['b2'],
      });
      const { after } = fuse(g);
      expect(opsOf(after)).toEqual(['FusedKernel', 'FusedAttention', 'FusedKernel']);
      expect(kernels(after).map(bodyOps)).toEqual([['Sigmoid', 'Neg'], ['Add', 'Tanh']]);
      expect([...kernelOf(after, 'a1')!.outputs].sort()).toEqual(['a1', 'q']);
    });

    it('groups of different shapes ([1, S, 2D] before a SwiGLU, [1, S, D] after it)', () => {
      const g = buildGraph({
        inputs: { u: ['float32', [1, S, 2 * D]], x: ['float32', [1, S, D]] },
        nodes: [
          ['Tanh', ['u'], ['g1']],
          ['Mul', ['g1', 'u'], ['g2']],
          ['dc.SwiGLU', ['g2'], ['sw']],
          ['Add', ['sw', 'x'], ['r']],
          ['Sigmoid', ['r'], ['y']],
        ],
        outputs: ['y'],
      });
      const { after } = fuse(g);
      expect(kernels(after).map(bodyOps)).toEqual([['Tanh', 'Mul'], ['SwiGLU', 'Add', 'Sigmoid']]);
      for (const k of kernels(after)) {
        const shapes = new Set(k.body!.nodes.map((n) => g.graph.types.get(n.outputs[0])).map((t) => (t?.kind === 'tensor' ? t.shape.join() : '')));
        expect(shapes.size).toBe(1);
      }
    });

    it('a node whose output broadcasts to a larger shape starts its own group', () => {
      const g = buildGraph({
        inputs: { x: ['float32', [1, S, D]], z: ['float32', [2, S, D]] },
        nodes: [['Sigmoid', ['x'], ['a']], ['Neg', ['a'], ['a2']], ['Add', ['a2', 'z'], ['c']], ['Tanh', ['c'], ['d']]],
        outputs: ['d'],
      });
      const { after } = fuse(g);
      expect(kernels(after).map(bodyOps)).toEqual([['Sigmoid', 'Neg'], ['Add', 'Tanh']]);
    });

    it('a Softmax over a non-last axis', () => {
      expectUntouched(buildGraph({
        inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
        nodes: [['Add', ['x', 'y'], ['a']], ['Softmax', ['a'], ['s'], { axis: 1 }], ['Mul', ['s', 'y'], ['t']]],
        outputs: ['t'],
      }));
    });

    it('a LayerNormalization over more than the last axis', () => {
      expectUntouched(buildGraph({
        inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
        constants: { w: randomTensor([S, D], 1), b: randomTensor([S, D], 2) },
        nodes: [['Add', ['x', 'y'], ['a']], ['LayerNormalization', ['a', 'w', 'b'], ['n'], { axis: 1 }], ['Mul', ['n', 'y'], ['t']]],
        outputs: ['t'],
      }));
    });

    it('a Quantize with format nvfp4 (per-tensor scale) stays outside; its producers still fuse', () => {
      const W = 16;
      const g = buildGraph({
        inputs: { x: ['float32', [1, S, W]], y: ['float32', [1, S, W]] },
        nodes: [
          ['Add', ['x', 'y'], ['h']],
          ['dc.Silu', ['h'], ['s']],
          ['dc.Quantize', ['s'], ['q', 'qs'], { format: 'nvfp4', axis: -1 }],
          ['dc.Dequantize', ['q', 'qs'], ['d'], { axis: -1 }],
        ],
        outputs: ['d'],
      });
      const { after } = fuse(g);
      expect(opsOf(after)).toEqual(['FusedKernel', 'Quantize', 'Dequantize']);
      expect(kernels(after).map(bodyOps)).toEqual([['Add', 'Silu']]);
      expect(kernels(after)[0].outputs).toEqual(['s']);
    });

    it('an fp8 Quantize along a non-last axis stays outside', () => {
      const g = buildGraph({
        inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
        nodes: [
          ['Add', ['x', 'y'], ['h']],
          ['dc.Silu', ['h'], ['s']],
          ['dc.Quantize', ['s'], ['q', 'qs'], { format: 'fp8', axis: 1 }],
          ['dc.Dequantize', ['q', 'qs'], ['d'], { axis: 1 }],
        ],
        outputs: ['d'],
      });
      const { after } = fuse(g);
      expect(kernels(after).map(bodyOps)).toEqual([['Add', 'Silu']]);
    });

    it('shape arithmetic on int64 tensors', () => {
      expectUntouched(buildGraph({
        inputs: { i: ['int64', [4]], j: ['int64', [4]] },
        nodes: [['Add', ['i', 'j'], ['a']], ['Mul', ['a', 'j'], ['b']]],
        outputs: ['b'],
      }));
    });
  });

  describe('no cycles', () => {
    const cycleSpec = (): GraphSpec => ({
      inputs: { x: ['float32', [1, S, D]] },
      constants: { W: randomTensor([D, D], 1, 'float32', 0.3) },
      nodes: [
        ['Sigmoid', ['x'], ['A']],
        ['Neg', ['A'], ['A2']],
        ['dc.Linear', ['A2', 'W'], ['L'], { transB: 1 }],
        ['Add', ['L', 'A'], ['B']], // reads A directly and, through the Linear, A's group
        ['Tanh', ['B'], ['B2']],
      ],
      outputs: ['B2'],
    });

    it('A (element-wise) -> Linear -> B (element-wise, also reading A): A and B are in different kernels', () => {
      const g = buildGraph(cycleSpec());
      const { after } = fuse(g);
      const ka = kernelOf(after, 'A'), kb = kernelOf(after, 'B');
      expect(ka).toBeDefined();
      expect(ka).not.toBe(kb);
      expect(ka!.body!.nodes.some((n) => n.outputs.includes('B'))).toBe(false);
      expect(opsOf(after)).toEqual(['FusedKernel', 'Linear', 'FusedKernel']);
      expect([...ka!.outputs].sort()).toEqual(['A', 'A2']);
    });

    it('the same with only single-node groups: nothing fuses, the graph is unchanged', () => {
      const spec = cycleSpec();
      expectUntouched(buildGraph({
        ...spec,
        nodes: spec.nodes.filter(([op]) => op !== 'Neg' && op !== 'Tanh').map(([op, i, o, a]) => [op, i.map((v) => (v === 'A2' ? 'A' : v)), o, a]),
        outputs: ['B'],
      }));
    });

    // Regression, was a bug (passes/fuse-elementwise.ts, grouping): the cycle check only asks whether a joining
    // node's *outside* inputs reach the group it joins, walking the original nodes. It does not see
    // a cycle made of two groups that each read the other: here a2 = Add(a1, b1) joins {a1}
    // (b1 does not depend on a1) and b2 = Mul(b1, a1) joins {b1} (a1 does not depend on b1), so
    // kernel {a1, a2} reads b1 from kernel {b1, b2}, which reads a1 from kernel {a1, a2}.
    // Expected: a valid graph (e.g. all four in one kernel, or b2 not joining {b1});
    // actual: the pass throws "toposort: the graph has a cycle".
    // Fix: check reachability on the contracted graph (a joining node's outside input must not
    // depend on the group through any other group either), or re-check acyclicity of the group
    // graph after grouping and split offending groups.
    it('two groups that read each other\'s first members (a cycle through two groups)', () => {
      const g = buildGraph({
        inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
        nodes: [
          ['Sigmoid', ['x'], ['a1']],
          ['Sigmoid', ['y'], ['b1']],
          ['Add', ['a1', 'b1'], ['a2']],
          ['Mul', ['b1', 'a1'], ['b2']],
        ],
        outputs: ['a2', 'b2'],
      });
      fuse(g);
    });
  });
});
