/**
 * Builds small IR graphs for pass tests from a compact spec, infers them, and checks that a
 * rewrite preserved what the graph computes (reference executor on seeded random inputs).
 */
import { expect } from 'vitest';
import { runReference } from '../../compiler/exec/reference.ts';
import { type DType, isFloat } from '../../compiler/ir/dtype.ts';
import { type Graph, type Node, type ValueType, tensorType } from '../../compiler/ir/graph.ts';
import { type Inferred, inferTypes } from '../../compiler/ir/infer.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { roundTo } from '../../compiler/ops/elementwise.ts';
import { compareOutputs } from '../../compiler/verify.ts';
import type { Pass } from '../../passes/pass.ts';
import { type PassReport, runPipeline } from '../../passes/pipeline.ts';
import { normal, rng } from './fixtures.ts';

/** `op` may be written 'dc.Name' for the compiler's own domain (e.g. 'dc.RoPE'). */
export type NodeSpec = [op: string, inputs: string[], outputs: string[], attrs?: Node['attrs']];

export interface GraphSpec {
  /** Default-domain opset of the graph (18 unless given; e.g. 23 for Attention/RMSNormalization). */
  opset?: number;
  inputs: Record<string, [DType, number[]]>;
  constants?: Record<string, Tensor>;
  nodes: NodeSpec[];
  outputs: string[];
}

export function buildGraph(spec: GraphSpec): Inferred {
  const types = new Map<string, ValueType>();
  for (const [name, [dtype, shape]] of Object.entries(spec.inputs)) types.set(name, tensorType(dtype, shape));
  const constants = new Map(Object.entries(spec.constants ?? {}).map(([name, t]) => {
    types.set(name, tensorType(t.dtype, t.shape));
    return [name, { dtype: t.dtype, shape: t.shape, source: { kind: 'inline' as const, tensor: t } }];
  }));
  const graph: Graph = {
    name: 'test', opset: spec.opset ?? 18, file: 'test.onnx', inputs: Object.keys(spec.inputs), outputs: spec.outputs, types, constants,
    nodes: spec.nodes.map(([op, inputs, outputs, attrs]) => {
      const dc = op.startsWith('dc.');
      return { op: dc ? op.slice(3) : op, domain: dc ? 'dc' : '', inputs, outputs, attrs: attrs ?? {}, name: '' };
    }),
  };
  return inferTypes(graph);
}

export const ints = (values: number[], shape = [values.length]) => Tensor.fromNumbers('int64', shape, values);
export const floats = (values: number[], shape = [values.length]) => Tensor.fromNumbers('float32', shape, values);

/** The single node of `op` in g (the test fails when there are none or several). */
export const only = (g: Graph, op: string): Node => {
  const found = g.nodes.filter((n) => n.op === op);
  expect(found).toHaveLength(1);
  return found[0];
};

/** The values of an inline constant of g, if it is one. */
export const constantValues = (g: Graph, name: string): number[] | undefined => {
  const c = g.constants.get(name);
  return c?.source.kind === 'inline' ? c.source.tensor.toNumbers() : undefined;
};

/** Runs one pass once; returns the new graph and the pass's report. */
export function applyPass(pass: Pass, input: Inferred): { after: Inferred; report: PassReport } {
  const r = runPipeline(input, { passes: [pass], maxRounds: 1 });
  return { after: r, report: r.reports[0] };
}

/**
 * Seeded inputs for a graph: every float type gets N(0, 1) values rounded to it, bool tensors are
 * true with probability `trueRate`, integers are drawn from [0, 4).
 */
export function randomInputs(graph: Graph, seed = 1, trueRate = 0.7): Record<string, Tensor> {
  const rand = rng(seed);
  const out: Record<string, Tensor> = {};
  for (const name of graph.inputs) {
    const t = graph.types.get(name)!;
    if (t.kind !== 'tensor') throw new Error('sequence input');
    const x = Tensor.zeros(t.dtype, t.shape as number[]);
    for (let i = 0; i < x.size; i++) {
      x.set(i, isFloat(t.dtype) ? roundTo(t.dtype, normal(rand)) : t.dtype === 'bool' ? Number(rand() < trueRate) : Math.floor(rand() * 4));
    }
    out[name] = x;
  }
  return out;
}

export interface SameResultsOptions {
  /** Largest relative L2 error allowed (default 1e-6; bfloat16 graphs round differently). */
  tolerance?: number;
  /** Inputs to run both graphs on (default: randomInputs(before, seed)). */
  inputs?: Record<string, Tensor>;
}

export function expectSameResults(before: Graph, after: Graph, seed = 3, options: SameResultsOptions = {}): void {
  const inputs = options.inputs ?? randomInputs(before, seed);
  const { relL2 } = compareOutputs(runReference(after, inputs), runReference(before, inputs));
  expect(relL2).toBeLessThanOrEqual(options.tolerance ?? 1e-6);
}

export const opsOf = (g: Graph) => g.nodes.map((n) => n.op);

/** A tensor of N(0, scale²) values rounded to `dtype` (weights and biases for pass tests). */
export function randomTensor(shape: number[], seed: number, dtype: DType = 'float32', scale = 1): Tensor {
  const rand = rng(seed);
  const t = Tensor.zeros(dtype, shape);
  for (let i = 0; i < t.size; i++) t.set(i, roundTo(dtype, normal(rand) * scale));
  return t;
}

/**
 * Every node input is a graph input, a constant or the output of an earlier node; every value is
 * defined once; every graph output is defined; and likewise inside each fused node's body (over
 * the body's formal inputs), whose inputs/outputs are the node's.
 */
export function expectTopologicallySorted(graph: Graph): void {
  const check = (nodes: readonly Node[], available: Iterable<string>, outputs: readonly string[], where: string) => {
    const defined = new Set(available);
    nodes.forEach((n, i) => {
      for (const x of n.inputs) if (x) expect(defined.has(x), `${where}: input '${x}' of ${n.op} #${i} defined before use`).toBe(true);
      for (const o of n.outputs) {
        if (!o) continue;
        expect(defined.has(o), `${where}: '${o}' defined once`).toBe(false);
        defined.add(o);
      }
      if (n.body) {
        expect(n.body.inputs, `${where}: body inputs of ${n.op} #${i}`).toEqual(n.inputs);
        expect(n.body.outputs, `${where}: body outputs of ${n.op} #${i}`).toEqual(n.outputs);
        check(n.body.nodes, n.body.inputs, n.body.outputs, `${where} / body of ${n.op} #${i}`);
      }
    });
    for (const o of outputs) expect(defined.has(o), `${where}: output '${o}' defined`).toBe(true);
  };
  check(graph.nodes, [...graph.inputs, ...graph.constants.keys()], graph.outputs, graph.name);
}
