/**
 * Structural tests for the canonicalize rules (passes/canonicalize): for each rule, graphs it must
 * rewrite (op list, the new node's attributes and inputs checked, results unchanged on the
 * reference executor) in every variant it claims, and graphs it must leave alone.
 *
 * Absorbed nodes that the rule merely stops reading (e.g. the Cast of x to float32) are left for
 * remove-dead, so each positive case runs canonicalize followed by remove-dead before looking at
 * the op list; the rule counts come from canonicalize's own report.
 */
import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import { canonicalize } from '../../passes/canonicalize/index.ts';
import type { Pass } from '../../passes/pass.ts';
import { type PassReport, runPipeline } from '../../passes/pipeline.ts';
import { removeDead } from '../../passes/simplify/remove-dead.ts';
import { type GraphSpec, type NodeSpec, applyPass, buildGraph, expectSameResults, floats, ints, opsOf, randomInputs, only, constantValues } from '../helpers/graph.ts';

const RMS = 'RMSNorm decomposition => RMSNormalization';
const ROPE = 'rotary embedding => RoPE';
const INT64_MAX = 9223372036854775807; // what exporters write for an open-ended slice

/** Runs `pass` then remove-dead; the report is `pass`'s. */
function run(pass: Pass, g: Inferred): { after: Inferred; report: PassReport } {
  const r = runPipeline(g, { passes: [pass, removeDead], maxRounds: 1 });
  return { after: r, report: r.reports[0] };
}

const fired = (report: PassReport) => Object.values(report.rewrites).reduce((a, b) => a + b, 0);

/** Asserts the pass left the graph exactly as it was and reported no rewrite. */
function expectUntouched(g: Inferred): void {
  const { after, report } = applyPass(canonicalize, g);
  expect(fired(report)).toBe(0);
  expect(opsOf(after.graph)).toEqual(opsOf(g.graph));
}

/** The graph outputs keep their types, and compute the same values (bfloat16-friendly inputs). */
function expectSame(before: Graph, after: Graph, tolerance = 1e-6): void {
  for (const o of before.outputs) expect(after.types.get(o)).toEqual(before.types.get(o));
  expectSameResults(before, after, 3, { tolerance, inputs: randomInputs(before, 3) });
}



// ---- RMSNorm ----------------------------------------------------------------------------------------

interface NormVariant {
  dtype?: 'float32' | 'bfloat16';
  shape?: number[];
  /** Div(xc, Sqrt(..)) instead of Mul(xc, Reciprocal(Sqrt(..))). */
  div?: boolean;
  /** Every commutative Mul/Add with its operands the other way round. */
  swap?: boolean;
  /** 'f32': a float32 weight; 'cast': a bfloat16 weight Cast to float32; 'none': no weight. */
  weight?: 'none' | 'f32' | 'cast';
  weightShape?: number[];
  /** Cast the float32 result back to bfloat16 at the end. */
  castBack?: boolean;
  eps?: number;
  axes?: number[];
  power?: number;
}

/**
 *   xc = [Cast f32](x);  n = xc · Reciprocal(Sqrt(ReduceMean(Pow(xc, 2)) + eps))  (or Div)
 *   y = n · w;  out = [Cast bf16](y)
 */
function rmsNormSpec(v: NormVariant = {}): GraphSpec {
  const shape = v.shape ?? [1, 3, 8];
  const d = shape.at(-1)!;
  const dtype = v.dtype ?? 'float32';
  const weight = v.weight ?? 'f32';
  const inputs: GraphSpec['inputs'] = { x: [dtype, shape] };
  if (weight !== 'none') inputs.w = [weight === 'cast' ? 'bfloat16' : 'float32', v.weightShape ?? [d]];
  const xc = dtype === 'float32' ? 'x' : 'xc';
  const pair = (a: string, b: string) => (v.swap ? [b, a] : [a, b]);
  const nodes: NodeSpec[] = [];
  if (xc === 'xc') nodes.push(['Cast', ['x'], ['xc'], { to: 1 }]);
  nodes.push(
    ['Pow', [xc, 'two'], ['sq']],
    ['ReduceMean', ['sq', 'axes'], ['mean'], { keepdims: 1 }],
    ['Add', pair('mean', 'eps'), ['var']],
    ['Sqrt', ['var'], ['std']],
  );
  if (v.div) nodes.push(['Div', [xc, 'std'], ['n']]);
  else nodes.push(['Reciprocal', ['std'], ['r']], ['Mul', pair(xc, 'r'), ['n']]);
  let y = 'n';
  if (weight !== 'none') {
    if (weight === 'cast') nodes.push(['Cast', ['w'], ['wf'], { to: 1 }]);
    nodes.push(['Mul', pair('n', weight === 'cast' ? 'wf' : 'w'), ['y']]);
    y = 'y';
  }
  if (v.castBack) nodes.push(['Cast', [y], ['out'], { to: 16 }]);
  return {
    inputs,
    constants: { two: floats([v.power ?? 2]), eps: floats([v.eps ?? 1e-6]), axes: ints(v.axes ?? [-1]) },
    nodes,
    outputs: [v.castBack ? 'out' : y],
  };
}

function expectRmsNorm(node: Node, x: string, w: string | undefined, out: string, eps: number): void {
  expect(node.domain).toBe('');
  expect(node.inputs[0]).toBe(x);
  if (w) expect(node.inputs[1]).toBe(w);
  expect(node.outputs).toEqual([out]);
  expect(node.attrs).toMatchObject({ axis: -1, stash_type: 1 });
  // eps is read off a float32 constant, so it is the float32 nearest the spec's value.
  expect(Math.abs((node.attrs.epsilon as number) - eps) / eps).toBeLessThan(1e-7);
}

describe('canonicalize: RMSNorm decomposition => RMSNormalization', () => {
  it('rewrites x · Reciprocal(Sqrt(ReduceMean(x²) + eps)) · w (float32)', () => {
    const g = buildGraph(rmsNormSpec());
    expect(opsOf(g.graph)).toEqual(['Pow', 'ReduceMean', 'Add', 'Sqrt', 'Reciprocal', 'Mul', 'Mul']);
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(report.rewrites[ROPE]).toBe(0);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization']);
    expectRmsNorm(after.graph.nodes[0], 'x', 'w', 'y', 1e-6);
    expectSame(g.graph, after.graph);
  });

  it('matches every commutative operand swapped (Mul(r, x), Add(eps, mean), Mul(w, n))', () => {
    const g = buildGraph(rmsNormSpec({ swap: true }));
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization']);
    expectRmsNorm(after.graph.nodes[0], 'x', 'w', 'y', 1e-6);
    expectSame(g.graph, after.graph);
  });

  it('matches Div(x, Sqrt(..)) instead of Mul by the reciprocal, and carries eps', () => {
    const g = buildGraph(rmsNormSpec({ div: true, eps: 1e-5 }));
    expect(opsOf(g.graph)).toEqual(['Pow', 'ReduceMean', 'Add', 'Sqrt', 'Div', 'Mul']);
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization']);
    expectRmsNorm(after.graph.nodes[0], 'x', 'w', 'y', 1e-5);
    expectSame(g.graph, after.graph);
  });

  it('rewrites the unweighted norm with a ones weight of the head size', () => {
    for (const div of [false, true]) {
      const g = buildGraph(rmsNormSpec({ weight: 'none', div, eps: 1e-3 }));
      const { after, report } = run(canonicalize, g);
      expect(report.rewrites[RMS]).toBe(1);
      expect(opsOf(after.graph)).toEqual(['RMSNormalization']);
      const n = after.graph.nodes[0];
      expectRmsNorm(n, 'x', undefined, 'n', 1e-3);
      const w = after.graph.constants.get(n.inputs[1]);
      expect(w?.shape).toEqual([8]);
      expect(w?.dtype).toBe('float32');
      expect(constantValues(after.graph, n.inputs[1])).toEqual(new Array(8).fill(1));
      expectSame(g.graph, after.graph);
    }
  });

  it('bfloat16: absorbs the Casts around the float32 maths, the weight Cast and the trailing Cast back', () => {
    const g = buildGraph(rmsNormSpec({ dtype: 'bfloat16', weight: 'cast', castBack: true, eps: 1e-6 }));
    expect(opsOf(g.graph)).toEqual(['Cast', 'Pow', 'ReduceMean', 'Add', 'Sqrt', 'Reciprocal', 'Mul', 'Cast', 'Mul', 'Cast']);
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization']);
    expectRmsNorm(after.graph.nodes[0], 'x', 'w', 'out', 1e-6);
    expect(after.graph.types.get('out')).toMatchObject({ dtype: 'bfloat16', shape: [1, 3, 8] });
    expectSame(g.graph, after.graph, 1e-2);
  });

  it('bfloat16, swapped operands and Div: still absorbs the trailing Cast', () => {
    const g = buildGraph(rmsNormSpec({ dtype: 'bfloat16', weight: 'f32', castBack: true, swap: true, div: true }));
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization']);
    expectRmsNorm(after.graph.nodes[0], 'x', 'w', 'out', 1e-6);
    expectSame(g.graph, after.graph, 1e-2);
  });

  it('bfloat16 with a cast back before the bfloat16 weight (HF Llama/Mistral/Qwen2 style)', () => {
    // out = w_bf16 · Cast_bf16(xc · rsqrt(mean(xc²) + eps))
    const g = buildGraph({
      inputs: { x: ['bfloat16', [1, 3, 8]], w: ['bfloat16', [8]] },
      constants: { two: floats([2]), eps: floats([1e-5]), axes: ints([-1]) },
      nodes: [
        ['Cast', ['x'], ['xc'], { to: 1 }],
        ['Pow', ['xc', 'two'], ['sq']],
        ['ReduceMean', ['sq', 'axes'], ['mean'], { keepdims: 1 }],
        ['Add', ['mean', 'eps'], ['var']],
        ['Sqrt', ['var'], ['std']],
        ['Reciprocal', ['std'], ['r']],
        ['Mul', ['xc', 'r'], ['n']],
        ['Cast', ['n'], ['nb'], { to: 16 }],
        ['Mul', ['w', 'nb'], ['out']],
      ],
      outputs: ['out'],
    });
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization']);
    expectRmsNorm(after.graph.nodes[0], 'x', 'w', 'out', 1e-5);
    expectSame(g.graph, after.graph, 1e-2);
  });

  it('bfloat16 without a cast back: normalises the float32 cast of x and keeps that Cast', () => {
    const g = buildGraph(rmsNormSpec({ dtype: 'bfloat16', weight: 'f32' }));
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['Cast', 'RMSNormalization']);
    expectRmsNorm(after.graph.nodes[1], 'xc', 'w', 'y', 1e-6);
    expect(after.graph.types.get('y')).toMatchObject({ dtype: 'float32' });
    expectSame(g.graph, after.graph);
  });

  it('rewrites only the bare norm when the normalised value is also used elsewhere', () => {
    const spec = rmsNormSpec();
    const g = buildGraph({ ...spec, outputs: ['y', 'n'] });
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization', 'Mul']);
    expectRmsNorm(after.graph.nodes[0], 'x', undefined, 'n', 1e-6);
    expect(after.graph.nodes[1].inputs).toEqual(['n', 'w']);
    expectSame(g.graph, after.graph);
  });

  it('does not take a full-shape activation as the weight (rewrites the bare norm, keeps the Mul)', () => {
    const spec = rmsNormSpec({ weightShape: [1, 3, 8] });
    const g = buildGraph(spec);
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization', 'Mul']);
    expectRmsNorm(after.graph.nodes[0], 'x', undefined, 'n', 1e-6);
    expectSame(g.graph, after.graph);
  });

  it('rewrites two norms in one graph (q and k norms)', () => {
    const a = rmsNormSpec();
    const rename = (s: string) => (['two', 'eps', 'axes'].includes(s) ? s : `${s}2`);
    const g = buildGraph({
      inputs: { ...a.inputs, x2: ['float32', [1, 3, 8]], w2: ['float32', [8]] },
      constants: a.constants,
      nodes: [...a.nodes, ...a.nodes.map(([op, ins, outs, attrs]): NodeSpec => [op, ins.map(rename), outs.map(rename), attrs])],
      outputs: ['y', 'y2'],
    });
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(2);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization', 'RMSNormalization']);
    expectSame(g.graph, after.graph);
  });

  describe('must not rewrite', () => {
    it('the mean over a non-last axis', () => {
      expectUntouched(buildGraph(rmsNormSpec({ axes: [1] })));
      expectUntouched(buildGraph(rmsNormSpec({ axes: [1], div: true, weight: 'none' })));
    });

    it('a Pow exponent other than 2', () => {
      expectUntouched(buildGraph(rmsNormSpec({ power: 3 })));
      expectUntouched(buildGraph(rmsNormSpec({ power: 3, weight: 'none', div: true })));
    });

    it('ReduceMean with keepdims=0', () => {
      const spec = rmsNormSpec({ shape: [4, 4], weight: 'none' }); // [4] broadcasts against [4, 4] (wrongly)
      spec.nodes = spec.nodes.map(([op, i, o, a]): NodeSpec => [op, i, o, op === 'ReduceMean' ? { keepdims: 0 } : a]);
      expectUntouched(buildGraph(spec));
    });

    it('an intermediate also used outside the pattern', () => {
      for (const extra of ['r', 'std', 'mean', 'sq', 'var']) {
        const spec = rmsNormSpec();
        expectUntouched(buildGraph({ ...spec, outputs: ['y', extra] }));
      }
    });

    it('statistics of one tensor applied to another', () => {
      const spec = rmsNormSpec();
      const g = buildGraph({
        ...spec,
        inputs: { ...spec.inputs, z: ['float32', [1, 3, 8]] },
        nodes: spec.nodes.map(([op, i, o, a]): NodeSpec => [op, op === 'Mul' && o[0] === 'n' ? ['z', 'r'] : i, o, a]),
      });
      expectUntouched(g);
    });

    it('an eps that is not a compile-time constant', () => {
      const spec = rmsNormSpec();
      const { eps: _, ...constants } = spec.constants!;
      expectUntouched(buildGraph({ ...spec, constants, inputs: { ...spec.inputs, eps: ['float32', [1]] } }));
    });

    // Regression, was a bug (passes/canonicalize/rms-norm.ts): the weight check only asks for w's shape to be
    // [1, ..., 1, D]; it does not bound its rank by x's. x [3, 8] · w [1, 1, 8] is [1, 3, 8], but the
    // rewrite RMSNormalization(x, w) infers x's shape [3, 8], so the output 'y' changes shape.
    // Require w's rank <= x's rank (or keep a Reshape/Expand to the old shape).
    it('a weight whose rank broadcasts the result to a larger shape stays a separate Mul', () => {
      const g = buildGraph(rmsNormSpec({ shape: [3, 8], weightShape: [1, 1, 8] }));
      expect(g.graph.types.get('y')).toMatchObject({ shape: [1, 3, 8] });
      const { after } = applyPass(canonicalize, g);
      expect(after.graph.types.get('y')).toEqual(g.graph.types.get('y'));
      // Only the bare norm may be rewritten; the broadcasting weight Mul must survive.
      expect(after.graph.nodes.find((n) => n.outputs[0] === 'y')?.op).toBe('Mul');
      expectSameResults(g.graph, after.graph);
    });

    // Regression, was a bug (passes/canonicalize/rms-norm.ts): same family: eps is accepted by value (m.scalar) whatever
    // its shape. mean [3, 1] + eps [1, 1, 1] is [1, 3, 1], so the decomposition's result is
    // [1, 3, 8]; RMSNormalization(x) is [3, 8].
    it('an eps constant whose rank broadcasts the result to a larger shape', () => {
      const spec = rmsNormSpec({ shape: [3, 8], weight: 'none' });
      const g = buildGraph({ ...spec, constants: { ...spec.constants, eps: floats([1e-6], [1, 1, 1]) } });
      expect(g.graph.types.get('n')).toMatchObject({ shape: [1, 3, 8] });
      const { after, report } = applyPass(canonicalize, g);
      expect(after.graph.types.get('n')).toEqual(g.graph.types.get('n'));
      expect(report.rewrites[RMS]).toBe(0);
    });
  });
});

// ---- RoPE ---------------------------------------------------------------------------------------------

interface RopeVariant {
  style: 'interleaved' | 'half';
  dtype?: 'float32' | 'bfloat16';
  /** x·cos + rot·sin written as sin·rot + cos·x. */
  swap?: boolean;
  castBack?: boolean;
  /** bfloat16 only: rotate the float32 cast of x rather than x itself. */
  rotateCast?: boolean;
  /** [start, end) of the two slices ([even, odd] component for 'interleaved', [hi, lo] for 'half'). */
  slices?: [[number, number], [number, number]];
  /** Neg the other piece (the inverse rotation for 'half' when slices are swapped). */
  negOther?: boolean;
  cosShape?: number[];
}

const X_SHAPE = [1, 3, 2, 8]; // (B, S, H, D), Flux.2 / Qwen-Image layout

/**
 *   interleaved: p = Reshape(x, [.., D/2, 2]); rot = Reshape(Concat(-odd, even), x.shape)
 *   half:        rot = Concat(-x[.., D/2:], x[.., :D/2])
 *   y = [Cast f32](x)·cos + [Cast f32](rot)·sin   [Cast bf16]
 */
function ropeSpec(v: RopeVariant): GraphSpec {
  const [b, s, h, d] = X_SHAPE;
  const dtype = v.dtype ?? 'float32';
  const bf16 = dtype === 'bfloat16';
  const rx = bf16 && v.rotateCast ? 'xc' : 'x';
  const nodes: NodeSpec[] = [];
  if (bf16) nodes.push(['Cast', ['x'], ['xc'], { to: 1 }]);
  const constants: GraphSpec['constants'] = { last: ints([-1]) };
  if (v.style === 'interleaved') {
    const [[e0, e1], [o0, o1]] = v.slices ?? [[0, 1], [1, 2]];
    Object.assign(constants, {
      pairShape: ints([b, s, h, d / 2, 2]), xShape: ints([b, s, h, d]),
      e0: ints([e0]), e1: ints([e1]), o0: ints([o0]), o1: ints([o1]),
    });
    nodes.push(
      ['Reshape', [rx, 'pairShape'], ['pairs']],
      ['Slice', ['pairs', 'e0', 'e1', 'last'], ['evenS']],
      ['Squeeze', ['evenS', 'last'], ['even']],
      ['Slice', ['pairs', 'o0', 'o1', 'last'], ['oddS']],
      ['Squeeze', ['oddS', 'last'], ['odd']],
      v.negOther ? ['Neg', ['even'], ['negEven']] : ['Neg', ['odd'], ['negOdd']],
      ['Unsqueeze', [v.negOther ? 'odd' : 'negOdd', 'last'], ['u1']],
      ['Unsqueeze', [v.negOther ? 'negEven' : 'even', 'last'], ['u2']],
      ['Concat', ['u1', 'u2'], ['stacked'], { axis: -1 }],
      ['Reshape', ['stacked', 'xShape'], ['rot']],
    );
  } else {
    const [[h0, h1], [l0, l1]] = v.slices ?? [[d / 2, INT64_MAX], [0, d / 2]];
    Object.assign(constants, { h0: ints([h0]), h1: ints([h1]), l0: ints([l0]), l1: ints([l1]) });
    nodes.push(
      ['Slice', [rx, 'h0', 'h1', 'last'], ['hi']],
      ['Slice', [rx, 'l0', 'l1', 'last'], ['lo']],
      v.negOther ? ['Neg', ['lo'], ['negLo']] : ['Neg', ['hi'], ['negHi']],
      ['Concat', v.negOther ? ['hi', 'negLo'] : ['negHi', 'lo'], ['rot'], { axis: -1 }],
    );
  }
  let xm = 'x', rm = 'rot';
  if (bf16) {
    xm = 'xc';
    if (!v.rotateCast) nodes.push(['Cast', ['rot'], ['rotc'], { to: 1 }]);
    rm = v.rotateCast ? 'rot' : 'rotc';
  }
  const mul = (a: string, c: string, o: string): NodeSpec => ['Mul', v.swap ? [c, a] : [a, c], [o]];
  nodes.push(mul(xm, 'cos', 'xcos'), mul(rm, 'sin', 'rsin'), ['Add', v.swap ? ['rsin', 'xcos'] : ['xcos', 'rsin'], ['y']]);
  if (v.castBack) nodes.push(['Cast', ['y'], ['out'], { to: 16 }]);
  const tables = v.cosShape ?? [1, s, 1, d];
  return {
    inputs: { x: [dtype, X_SHAPE], cos: ['float32', tables], sin: ['float32', tables] },
    constants,
    nodes,
    outputs: [v.castBack ? 'out' : 'y'],
  };
}

function expectRope(node: Node, style: string, out: string, x = 'x'): void {
  expect(node.domain).toBe('dc');
  expect(node.op).toBe('RoPE');
  expect(node.inputs).toEqual([x, 'cos', 'sin']);
  expect(node.outputs).toEqual([out]);
  expect(node.attrs.style).toBe(style);
}

describe('canonicalize: rotary embedding => RoPE', () => {
  for (const style of ['interleaved', 'half'] as const) {
    describe(`${style} (${style === 'interleaved' ? 'Flux.2 / Qwen-Image' : 'Mistral / Qwen2 text encoders'})`, () => {
      it('rewrites x·cos + rot(x)·sin (float32)', () => {
        const g = buildGraph(ropeSpec({ style }));
        expect(opsOf(g.graph)).toEqual(style === 'interleaved'
          ? ['Reshape', 'Slice', 'Squeeze', 'Slice', 'Squeeze', 'Neg', 'Unsqueeze', 'Unsqueeze', 'Concat', 'Reshape', 'Mul', 'Mul', 'Add']
          : ['Slice', 'Slice', 'Neg', 'Concat', 'Mul', 'Mul', 'Add']);
        const { after, report } = run(canonicalize, g);
        expect(report.rewrites[ROPE]).toBe(1);
        expect(report.rewrites[RMS]).toBe(0);
        expect(opsOf(after.graph)).toEqual(['RoPE']);
        expectRope(after.graph.nodes[0], style, 'y');
        expect(after.graph.nodes[0].attrs.to).toBeUndefined();
        expectSame(g.graph, after.graph);
      });

      it('matches the operands in any order (sin·rot + cos·x)', () => {
        const g = buildGraph(ropeSpec({ style, swap: true }));
        const { after, report } = run(canonicalize, g);
        expect(report.rewrites[ROPE]).toBe(1);
        expect(opsOf(after.graph)).toEqual(['RoPE']);
        expectRope(after.graph.nodes[0], style, 'y');
        expectSame(g.graph, after.graph);
      });

      it('bfloat16: absorbs the casts to float32 and the trailing Cast back', () => {
        for (const swap of [false, true]) {
          const g = buildGraph(ropeSpec({ style, dtype: 'bfloat16', castBack: true, swap }));
          const { after, report } = run(canonicalize, g);
          expect(report.rewrites[ROPE]).toBe(1);
          expect(opsOf(after.graph)).toEqual(['RoPE']);
          const n = after.graph.nodes[0];
          expectRope(n, style, 'out');
          expect(n.attrs.to).toBeUndefined();
          expect(after.graph.types.get('out')).toMatchObject({ dtype: 'bfloat16', shape: X_SHAPE });
          expectSame(g.graph, after.graph, 1e-2);
        }
      });

      it('bfloat16 without a cast back: RoPE produces float32 (to = 1)', () => {
        const g = buildGraph(ropeSpec({ style, dtype: 'bfloat16' }));
        const { after, report } = run(canonicalize, g);
        expect(report.rewrites[ROPE]).toBe(1);
        expect(opsOf(after.graph)).toEqual(['RoPE']);
        const n = after.graph.nodes[0];
        expectRope(n, style, 'y');
        expect(n.attrs.to).toBe(1);
        expect(after.graph.types.get('y')).toMatchObject({ dtype: 'float32' });
        expectSame(g.graph, after.graph);
      });

      // Regression, was a bug (passes/canonicalize/rope.ts): when the rotation is computed from the float32 Cast of x
      // (rot(xc) rather than rot(x)), the rule reads RoPE from r.x = xc but also removes the Cast
      // producing xc (it is in `removable`: its only users, mulX and the rotation's first node, are
      // all in the pattern), so the rewritten graph reads a value nothing defines and re-inference
      // throws "input 0 'xc' to be defined before use". Either keep that Cast, or read RoPE from
      // skipCasts(r.x) (the bf16 x) when the Cast back is absorbed.
      it('bfloat16, rotating the float32 cast of x: RoPE reads x, or keeps the Cast it reads', () => {
        const g = buildGraph(ropeSpec({ style, dtype: 'bfloat16', castBack: true, rotateCast: true }));
        const { after, report } = run(canonicalize, g);
        expect(report.rewrites[ROPE]).toBe(1);
        expect(opsOf(after.graph).filter((op) => op !== 'Cast')).toEqual(['RoPE']);
        expectSame(g.graph, after.graph, 1e-2);
      });

      it('x itself may be shared (also a graph output)', () => {
        const spec = ropeSpec({ style });
        const g = buildGraph({ ...spec, nodes: [...spec.nodes, ['Neg', ['x'], ['other']]], outputs: ['y', 'other'] });
        const { after, report } = run(canonicalize, g);
        expect(report.rewrites[ROPE]).toBe(1);
        expect(opsOf(after.graph)).toEqual(['RoPE', 'Neg']);
        expectRope(only(after.graph, 'RoPE'), style, 'y');
        expectSame(g.graph, after.graph);
      });

      it('must not rewrite when an intermediate is used outside the pattern (rot, Neg, a Mul)', () => {
        const intermediates = style === 'interleaved' ? ['rot', 'negOdd', 'pairs', 'xcos', 'rsin'] : ['rot', 'negHi', 'lo', 'xcos', 'rsin'];
        for (const extra of intermediates) expectUntouched(buildGraph({ ...ropeSpec({ style }), outputs: ['y', extra] }));
      });

      it('must not rewrite x·cos + rot(z)·sin (x and the rotated tensor differ)', () => {
        const spec = ropeSpec({ style });
        const g = buildGraph({
          ...spec,
          inputs: { ...spec.inputs, z: ['float32', X_SHAPE] },
          nodes: spec.nodes.map(([op, i, o, a]): NodeSpec => [op, op === 'Mul' && o[0] === 'xcos' ? ['z', 'cos'] : i, o, a]),
        });
        expectUntouched(g);
      });

      // Regression, was a bug (passes/canonicalize/rope.ts): nothing checks that cos/sin broadcast to x's shape; here
      // x [1,3,2,8] · cos [2,3,1,8] is [2,3,2,8] but RoPE(x, cos, sin) infers x's shape [1,3,2,8], so
      // the rewrite changes the output's shape (and values). The rule should require
      // broadcast(x, cos) == broadcast(x, sin) == x.shape.
      it('must not rewrite when cos/sin broadcast x to a larger shape', () => {
        const g = buildGraph(ropeSpec({ style, cosShape: [2, 3, 1, 8] }));
        expect(g.graph.types.get('y')).toMatchObject({ shape: [2, 3, 2, 8] });
        expectUntouched(g);
      });
    });
  }

  describe('must not rewrite slices that are not the halves / pairs', () => {
    it('half: Concat(-x[3:], x[:3]) (a roll, not halves)', () => {
      expectUntouched(buildGraph(ropeSpec({ style: 'half', slices: [[3, 8], [0, 3]] })));
    });

    it('half: Concat(-x[:D/2], x[D/2:]) (the Neg on the wrong half)', () => {
      expectUntouched(buildGraph(ropeSpec({ style: 'half', slices: [[0, 4], [4, 8]] })));
    });

    it('half: Concat(x[D/2:], -x[:D/2]) (the inverse rotation)', () => {
      expectUntouched(buildGraph(ropeSpec({ style: 'half', slices: [[4, 8], [0, 4]], negOther: true })));
    });

    it('interleaved: both pieces the same component of the pair', () => {
      expectUntouched(buildGraph(ropeSpec({ style: 'interleaved', slices: [[1, 2], [1, 2]] })));
      expectUntouched(buildGraph(ropeSpec({ style: 'interleaved', slices: [[0, 1], [0, 1]] })));
    });

    it('interleaved: the components swapped ((x0, -x1) instead of (-x1, x0))', () => {
      expectUntouched(buildGraph(ropeSpec({ style: 'interleaved', slices: [[1, 2], [0, 1]] })));
    });

    it('interleaved: the Neg on the even component (the inverse rotation)', () => {
      expectUntouched(buildGraph(ropeSpec({ style: 'interleaved', negOther: true })));
    });
  });

  it('rewrites an RMSNorm feeding a RoPE in one pass (q-norm then rotary, Flux.2 style)', () => {
    const norm = rmsNormSpec({ shape: X_SHAPE, weight: 'f32' });
    const rope = ropeSpec({ style: 'interleaved' });
    const rename = (s: string) => (s === 'x' ? 'y0' : s === 'y' ? 'q' : s);
    const g = buildGraph({
      inputs: { ...norm.inputs, cos: rope.inputs.cos, sin: rope.inputs.sin },
      constants: { ...norm.constants, ...rope.constants },
      nodes: [
        ...norm.nodes.map(([op, i, o, a]): NodeSpec => [op, i, o.map((x) => (x === 'y' ? 'y0' : x)), a]),
        ...rope.nodes.map(([op, i, o, a]): NodeSpec => [op, i.map(rename), o.map(rename), a]),
      ],
      outputs: ['q'],
    });
    const { after, report } = run(canonicalize, g);
    expect(report.rewrites[RMS]).toBe(1);
    expect(report.rewrites[ROPE]).toBe(1);
    expect(fired(report)).toBe(2);
    expect(opsOf(after.graph)).toEqual(['RMSNormalization', 'RoPE']);
    expectRmsNorm(after.graph.nodes[0], 'x', 'w', 'y0', 1e-6);
    expectRope(after.graph.nodes[1], 'interleaved', 'q', 'y0');
    expectSame(g.graph, after.graph);
  });
});
