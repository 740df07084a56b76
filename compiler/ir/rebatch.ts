/**
 * Rebatching (`npx compile --batch N`): a graph exported with a static batch of 1 becomes the same
 * per-sample function over N samples at once (Qwen-Image's two true-CFG passes as one batched pass).
 *
 * Every graph input's leading dim goes from 1 to N; then the nodes are re-inferred in order, and the
 * two ways a batch-1 trace bakes its batch into the graph are mended where they appear:
 *   - a Concat off axis 0 whose inputs disagree on axis 0: an input that does not depend on any
 *     graph input (a traced constant, e.g. Qwen-Image's ones(1, img_tokens) mask part) and has 1
 *     there is expanded to N (the same value for every sample, as the trace computed it);
 *   - a Reshape of a batch-carrying value (now N times its batch-1 element count) to a shape that
 *     depends on no graph input (a traced constant; shapes computed from Shape of the data follow
 *     the batch by themselves): a leading 1 (where the batch-1 output also led with 1) becomes N; a leading dim that
 *     folded the batch in (no -1 or 0 entries) is multiplied by N. The batch stays the outermost
 *     axis, as in every layout a batch-1 trace can express.
 * Anything else that the batch-1 trace fixed is not guessed at: every value computed from the
 * samples' data must hold N times its batch-1 element count, else the node that pins a sample (the
 * text encoders' GatherND of the padding mask at constant index 0, Flux.2's img_ids[0], a Slice over axis 0, a reduction
 * over the batch) is named in the error; the outputs must lead with N. The result must be proven per graph (test/rebatch.test.ts runs the tiny fixtures at
 * batch 2 against two batch-1 runs on the reference executor).
 */
import { fail } from '../errors.ts';
import { lookupOp } from '../ops/registry.ts';
import { type Constant, type Graph, type Node, type TensorType, type ValueType, describeNode, formatType, isStatic, numel } from './graph.ts';
import { type Inferred, inferNode, inferTypes, knownConstantValues, propagateKnown } from './infer.ts';
import { Tensor } from './tensor.ts';

/** Ops whose outputs describe a shape, not the samples' data (CastLike's second input gives only a type). */
const SHAPE_OPS = new Set(['Shape', 'Size']);
const lead = (t: ValueType | undefined): number | undefined => (t?.kind === 'tensor' && t.shape.length && typeof t.shape[0] === 'number' ? t.shape[0] : undefined);

export function rebatch(graph: Graph, batch: number, flag = '--batch'): Graph {
  if (!(Number.isInteger(batch) && batch >= 1)) fail(flag, 'a positive integer', String(batch));
  if (batch === 1) return graph;
  for (const name of graph.inputs) {
    const t = graph.types.get(name);
    if (t?.kind !== 'tensor' || !isStatic(t.shape) || t.shape[0] !== 1) {
      fail(`${flag} ${batch}`, `every graph input of static shape with a leading batch dim of 1`, `'${name}' ${t ? formatType(t) : 'untyped'}`);
    }
  }
  const one: Inferred = inferTypes(graph);
  const types = new Map<string, ValueType>();
  for (const name of graph.constants.keys()) types.set(name, graph.types.get(name)!);
  for (const name of graph.inputs) {
    const t = graph.types.get(name) as TensorType;
    types.set(name, { ...t, shape: [batch, ...t.shape.slice(1)] });
  }
  const known = knownConstantValues(graph);
  const constants = new Map<string, Constant>(graph.constants);
  const batched = new Set<string>(graph.inputs); // values that depend on a graph input
  const carrying = new Set<string>(graph.inputs); // data that holds one slice per sample (not shapes)
  const nodes: Node[] = [];
  let fresh = 0;
  const constant = (base: string, tensor: Tensor) => {
    const name = `${base}/rebatch${fresh++}`;
    constants.set(name, { dtype: tensor.dtype, shape: tensor.shape, source: { kind: 'inline', tensor } });
    types.set(name, { kind: 'tensor', dtype: tensor.dtype, shape: tensor.shape });
    known.set(name, tensor);
    return name;
  };
  const count = (t: ValueType | undefined) => (t?.kind === 'tensor' && isStatic(t.shape) ? numel(t.shape) : NaN);
  const emit = (node: Node, index: number) => {
    const where = `${graph.file}: ${describeNode(node, index)} (${flag} ${batch})`;
    const outs = inferNode(node, types, known, where, graph.opset);
    node.outputs.forEach((name, i) => name && types.set(name, outs[i]));
    propagateKnown(node, types, known, lookupOp(node)!);
    if (node.inputs.some((x) => batched.has(x))) for (const o of node.outputs) if (o) batched.add(o);
    // A value carrying the batch holds N samples' elements; one that does not (a GatherND or Slice
    // the trace pinned to sample 0, a reduction over the batch) would silently mix or drop samples.
    if (!SHAPE_OPS.has(node.op) && node.inputs.some((x, i) => carrying.has(x) && !(node.op === 'CastLike' && i === 1))) {
      for (const o of node.outputs) {
        if (!o) continue;
        const before = count(one.graph.types.get(o)), now = count(types.get(o)); // NaN for a sequence: checked at its SequenceAt
        if (!Number.isNaN(before) && now !== batch * before) fail(where, `'${o}' to hold ${batch} samples (${batch} x ${before} elements) as its batch-carrying inputs do`, `${formatType(types.get(o)!)}: the batch-1 export fixes its sample here; this graph cannot be rebatched`);
        carrying.add(o);
      }
    }
    nodes.push(node);
  };

  graph.nodes.forEach((original, index) => {
    let node = original;
    if (node.op === 'Concat' && !node.domain) {
      const rank = (types.get(node.inputs[0]) as TensorType | undefined)?.shape.length ?? 0;
      const axis = ((Number(node.attrs.axis ?? 0) % rank) + rank) % rank;
      const leads = node.inputs.map((x) => lead(types.get(x)));
      if (axis !== 0 && leads.includes(batch) && leads.includes(1)) {
        const inputs = node.inputs.map((x, i) => {
          if (leads[i] !== 1 || batched.has(x)) return x;
          const t = types.get(x) as TensorType;
          const shape = constant(x, Tensor.fromNumbers('int64', [t.shape.length], [batch, ...(t.shape.slice(1) as number[])]));
          const y = `${x}/batch${batch}_${fresh++}`;
          emit({ op: 'Expand', domain: '', inputs: [x, shape], outputs: [y], attrs: {}, name: `${original.name}/rebatch_expand` }, index);
          return y;
        });
        node = { ...node, inputs };
      }
    }
    if (node.op === 'Reshape' && !node.domain && batched.has(node.inputs[0]) && !batched.has(node.inputs[1]) && known.has(node.inputs[1])) {
      const target = known.get(node.inputs[1])!.toNumbers();
      const inOne = one.graph.types.get(node.inputs[0]) as TensorType, outOne = one.graph.types.get(node.outputs[0]) as TensorType;
      const inNow = types.get(node.inputs[0]) as TensorType;
      let mended: number[] | undefined;
      if (numel(inNow.shape as number[]) === batch * numel(inOne.shape as number[])) {
        if (target[0] === 1 && outOne.shape[0] === 1) mended = [batch, ...target.slice(1)];
        else if (target[0] > 1 && !target.includes(-1) && !target.includes(0)) mended = [target[0] * batch, ...target.slice(1)];
      }
      if (mended) node = { ...node, inputs: [node.inputs[0], constant(node.inputs[1], Tensor.fromNumbers('int64', [mended.length], mended)), ...node.inputs.slice(2)] };
    }
    emit(node, index);
  });

  for (const o of graph.outputs) {
    const t = types.get(o);
    if (lead(t) !== batch) fail(`${flag} ${batch}`, `graph output '${o}' to lead with the batch (${batch})`, t ? formatType(t) : 'no type');
  }
  const inputTypes = new Map(graph.types);
  for (const name of [...graph.inputs, ...constants.keys()]) inputTypes.set(name, types.get(name)!);
  return { ...graph, nodes, constants, types: inputTypes, batch };
}
