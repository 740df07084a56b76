/**
 * Shared by the attention tests (test/codegen-attention.test.ts, test/attention-fp8-pv.test.ts):
 * the dc ops of a graph by name, relative L2 error, seeded tensors for a value's type (the
 * generator of test/gpu/attention-data.ts, so CPU and GPU cases draw the same inputs), and values
 * computed from given roots through the nodes in between (reference executor).
 */
import type { Graph } from '../../compiler/ir/graph.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { loadConstant } from '../../compiler/onnx/constants.ts';
import { roundTo } from '../../compiler/ops/elementwise.ts';
import { lookupOp } from '../../compiler/ops/registry.ts';
import { uniform } from '../gpu/attention-data.ts';

export const ops = (g: Graph, op: string) => g.nodes.filter((n) => n.domain === 'dc' && n.op === op);

export const relL2 = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i] - b[i]) ** 2; den += b[i] ** 2; }
  return Math.sqrt(num / den);
};

/** Seeded values for a tensor type (float inputs in [-amp, amp), rounded to the dtype; bool: mostly true). */
export function random(graph: Graph, v: string, seed: number, amp = 1): Tensor {
  const t = graph.types.get(v) as unknown as { dtype: Tensor['dtype']; shape: number[] };
  const x = Tensor.zeros(t.dtype, t.shape);
  for (let i = 0; i < x.size; i++) x.set(i, t.dtype === 'bool' ? Number(uniform(i, seed) > -0.6) : roundTo(t.dtype, uniform(i, seed) * amp));
  return x;
}

/** Values of `v` computed from the roots through the view chain (reference executor). */
export function throughViews(graph: Graph, v: string, roots: Map<string, Tensor>): Tensor {
  const known = roots.get(v);
  if (known) return known;
  if (graph.constants.has(v)) return loadConstant(graph.constants.get(v)!, v);
  const node = graph.nodes.find((n) => n.outputs.includes(v))!;
  const outs = lookupOp(node)!.exec(node.inputs.map((x) => (x ? throughViews(graph, x, roots) : undefined)), node) as Tensor[];
  return outs[node.outputs.indexOf(v)];
}
