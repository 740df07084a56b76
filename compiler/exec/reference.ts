/**
 * The CPU reference executor: runs a Graph node by node with each op's plain float32/int64
 * implementation. It is the oracle every pass and kernel is checked against, so it favours
 * obviousness over speed. Values are freed after their last use; constants load lazily.
 */
import { CompileError, fail } from '../errors.ts';
import { type Graph, describeNode, formatShape } from '../ir/graph.ts';
import type { Tensor } from '../ir/tensor.ts';
import { loadConstant } from '../onnx/constants.ts';
import type { RuntimeValue } from '../ops/op.ts';
import { lookupOp } from '../ops/registry.ts';

export function runReference(graph: Graph, inputs: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
  const values = new Map<string, RuntimeValue>();
  for (const name of graph.inputs) {
    const given = inputs[name];
    const t = graph.types.get(name);
    if (!given) fail(`input '${name}'`, `a tensor ${t?.kind === 'tensor' ? `${t.dtype}${formatShape(t.shape)}` : ''}`, 'none given');
    if (t?.kind === 'tensor') {
      const shapeOk = given.shape.length === t.shape.length && t.shape.every((d, i) => typeof d !== 'number' || d === given.shape[i]);
      if (given.dtype !== t.dtype || !shapeOk) {
        fail(`input '${name}'`, `${t.dtype}${formatShape(t.shape)}`, `${given.dtype}${formatShape(given.shape)}`);
      }
    }
    values.set(name, given);
  }
  const lastUse = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.inputs.forEach((x) => x && lastUse.set(x, i)));
  const keep = new Set(graph.outputs);

  graph.nodes.forEach((node, index) => {
    const op = lookupOp(node);
    if (!op) fail(describeNode(node, index), 'an operator the reference executor implements', `'${node.op}'`);
    const args = node.inputs.map((name) => {
      if (!name) return undefined;
      let v = values.get(name);
      if (v === undefined) {
        const c = graph.constants.get(name);
        if (!c) fail(describeNode(node, index), `value '${name}' to be computed before use`, 'nothing');
        v = loadConstant(c, name);
        values.set(name, v);
      }
      return v;
    });
    let results: RuntimeValue[];
    try {
      results = op.exec(args, node);
    } catch (e) {
      if (e instanceof CompileError) throw e;
      throw new Error(`reference executor failed at ${describeNode(node, index)}: ${(e as Error).message}`);
    }
    node.outputs.forEach((name, i) => name && values.set(name, results[i]));
    for (const name of node.inputs) if (name && lastUse.get(name) === index && !keep.has(name)) values.delete(name);
  });

  const result: Record<string, Tensor> = {};
  for (const name of graph.outputs) {
    const v = values.get(name) ?? (graph.constants.has(name) ? loadConstant(graph.constants.get(name)!, name) : undefined);
    if (!v || Array.isArray(v)) fail(`graph output '${name}'`, 'a tensor', v ? 'a sequence' : 'nothing');
    result[name] = v;
  }
  return result;
}
