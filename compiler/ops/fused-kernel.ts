/**
 * dc.FusedKernel: one kernel computing a small subgraph (node.body) of element-wise ops and row
 * reductions (norms, softmax over the last axis) — what fuse-elementwise groups. Its meaning is its
 * body: inference and the reference implementation run the body with the ordinary ops, so a fused
 * kernel is correct exactly when its body is.
 * dc.SegmentedKernel: independent row kernels run as one launch (passes/fuse-horizontal.ts); its
 * body is those kernels, run the same way.
 */
import { fail } from '../errors.ts';
import { runReference } from '../exec/reference.ts';
import type { Graph, Node, ValueType } from '../ir/graph.ts';
import { inferTypes } from '../ir/infer.ts';
import type { Tensor } from '../ir/tensor.ts';
import { type OpDef, tensorArg } from './op.ts';

function bodyGraph(node: Node, inputTypes: readonly ValueType[], where: string): Graph {
  const body = node.body;
  if (!body) fail(where, `a ${node.op} with a body`, 'none');
  return {
    name: 'body', opset: 23, file: where, inputs: body.inputs, outputs: body.outputs, nodes: body.nodes,
    types: new Map(body.inputs.map((name, i) => [name, inputTypes[i]])), constants: new Map(),
  };
}

const fusedKernel: OpDef = {
  infer: (c) => {
    const types = c.node.inputs.map((_, i) => c.inputType(i));
    const { graph } = inferTypes(bodyGraph(c.node, types, c.where));
    return graph.outputs.map((o) => graph.types.get(o)!);
  },
  exec: (ins, node) => {
    const args = ins.map((_, i) => tensorArg(ins, i, node));
    const graph = bodyGraph(node, args.map((t) => ({ kind: 'tensor', dtype: t.dtype, shape: t.shape })), `${node.op} node '${node.name}'`);
    const inputs: Record<string, Tensor> = {};
    graph.inputs.forEach((name, i) => (inputs[name] = args[i]));
    const result = runReference(graph, inputs);
    return graph.outputs.map((o) => result[o]);
  },
};

export const fusedKernelOps: Record<string, OpDef> = { FusedKernel: fusedKernel, SegmentedKernel: fusedKernel };
