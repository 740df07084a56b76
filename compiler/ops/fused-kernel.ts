/**
 * dc.FusedKernel: one kernel computing a small subgraph (node.body) of element-wise ops and row
 * reductions (norms, softmax over the last axis) — what fuse-elementwise groups. Its meaning is its
 * body: inference and the reference implementation run the body with the ordinary ops, so a fused
 * kernel is correct exactly when its body is.
 * dc.SegmentedKernel: independent row kernels run as one launch (passes/fuse-horizontal.ts); its
 * body is those kernels, run the same way.
 * dc.GroupedGemm: independent FP8 GEMMs (QLinears) run as one launch of the own GEMM
 * (passes/fuse-horizontal.ts); its body is those GEMMs, run the same way, and its FLOPs theirs.
 */
import { fail } from '../errors.ts';
import { runReference } from '../exec/reference.ts';
import type { Graph, Node, ValueType } from '../ir/graph.ts';
import { inferTypes } from '../ir/infer.ts';
import type { Tensor } from '../ir/tensor.ts';
import { type OpDef, type StaticTensorType, tensorArg } from './op.ts';
import { lookupOp } from './registry.ts';

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

/** A grouped GEMM's FLOPs: its GEMMs', each from its own inputs and outputs among the node's. */
const groupedGemm: OpDef = {
  ...fusedKernel,
  flops: (node, inputs, outputs) => {
    // By the body's formal names (a later pass may rename the node's values, never the body's).
    const body = node.body!;
    const typeOf = new Map<string, StaticTensorType>([...body.inputs.map((v, i) => [v, inputs[i]] as const), ...body.outputs.map((v, i) => [v, outputs[i]] as const)]);
    return body.nodes.reduce((sum, b) => sum + (lookupOp(b)?.flops?.(b, b.inputs.filter(Boolean).map((v) => typeOf.get(v)!), b.outputs.map((v) => typeOf.get(v)!)) ?? 0), 0);
  },
};

export const fusedKernelOps: Record<string, OpDef> = { FusedKernel: fusedKernel, SegmentedKernel: fusedKernel, GroupedGemm: groupedGemm };
