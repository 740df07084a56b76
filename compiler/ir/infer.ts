/**
 * Shape and dtype inference over a whole graph, with compile-time value propagation.
 *
 * Walks nodes in order; each op's `infer` gets static input types and, where known, input values.
 * Values are known for inline constants, small integer constants, Shape of a static tensor, and
 * any node whose inputs are all known and whose outputs are small (computed with the op's own
 * reference implementation). That is how shape arithmetic (Shape -> Gather -> Concat -> Reshape)
 * resolves after specialisation. External weights are never read here.
 */
import { CompileError, fail } from '../errors.ts';
import { lookupOp } from '../ops/registry.ts';
import type { InferCtx, OpDef, StaticTensorType } from '../ops/op.ts';
import { shapeRange } from '../ops/shape.ts';
import { loadConstant } from '../onnx/constants.ts';
import { type Graph, type Node, type ValueType, describeNode, formatType, isStatic, numel } from './graph.ts';
import { isInteger } from './dtype.ts';
import { Tensor } from './tensor.ts';

/** Tensors up to this many elements are computed at compile time when their inputs are known. */
export const KNOWN_VALUE_LIMIT = 4096;

export interface Inferred {
  graph: Graph;
  /** Compile-time values (constants and folded shape arithmetic), by value name. */
  known: Map<string, Tensor>;
}

export function knownConstantValues(graph: Graph): Map<string, Tensor> {
  const known = new Map<string, Tensor>();
  for (const [name, c] of graph.constants) {
    const n = c.shape.reduce((a, b) => a * b, 1);
    if (c.source.kind === 'inline' ? n <= KNOWN_VALUE_LIMIT : isInteger(c.dtype) && n <= 1024) known.set(name, loadConstant(c, name));
  }
  return known;
}

export function inferTypes(graph: Graph): Inferred {
  const types = new Map<string, ValueType>();
  for (const name of [...graph.inputs, ...graph.constants.keys()]) types.set(name, graph.types.get(name)!);
  const known = knownConstantValues(graph);

  graph.nodes.forEach((node, index) => {
    const where = `${graph.file}: ${describeNode(node, index)}`;
    const op = lookupOp(node)!;
    const outTypes = inferNode(node, types, known, where, graph.opset);
    node.outputs.forEach((name, i) => {
      if (!name) return;
      if (!outTypes[i]) fail(where, `at most ${outTypes.length} outputs`, `${node.outputs.length}`);
      types.set(name, outTypes[i]);
    });
    propagateKnown(node, types, known, op);
  });
  for (const o of graph.outputs) if (!types.has(o)) fail(graph.file, `graph output '${o}' to be produced by a node`, 'no producer');
  return { graph: { ...graph, types }, known };
}

/**
 * Output types of one node given the types (and known values) of the values before it. Throws a
 * CompileError naming `where` for unknown ops, undefined inputs and invalid input types.
 */
export function inferNode(node: Node, types: ReadonlyMap<string, ValueType>, known: ReadonlyMap<string, Tensor>, where: string, opset: number): ValueType[] {
  const op = lookupOp(node);
  if (!op) fail(where, 'an operator the compiler supports', `unknown operator '${node.domain ? node.domain + ':' : ''}${node.op}'`);
  node.inputs.forEach((name, i) => {
    if (name && !types.has(name)) fail(where, `input ${i} '${name}' to be defined before use`, 'no producer (graph not topologically sorted or value missing)');
  });
  const ctx: InferCtx = {
    node, where, opset,
    has: (i) => !!node.inputs[i],
    inputType: (i) => {
      const t = types.get(node.inputs[i]);
      if (!t) fail(where, `input ${i}`, 'nothing');
      return t;
    },
    input: (i) => {
      const t = ctx.inputType(i);
      if (t.kind !== 'tensor') fail(where, `a tensor at input ${i}`, 'a sequence');
      const sym = t.shape.find((d) => typeof d !== 'number');
      if (sym !== undefined) {
        fail(where, `static shapes (bind symbolic dims with --shape ${String(sym)}=N)`, `symbolic dim '${String(sym)}' in input ${i} '${node.inputs[i]}' ${formatType(t)}`);
      }
      return t as StaticTensorType;
    },
    value: (i) => known.get(node.inputs[i]),
    requireValue: (i, what) => {
      const v = known.get(node.inputs[i]);
      if (!v) fail(where, `a compile-time constant '${what}' (input ${i})`, `a value computed at run time ('${node.inputs[i]}')`);
      return v;
    },
  };
  try {
    return op.infer(ctx);
  } catch (e) {
    if (e instanceof CompileError) throw e;
    fail(where, 'valid inputs', (e as Error).message);
  }
}

/** Records the node's outputs as known when they can be computed now (see file header). */
export function propagateKnown(node: Node, types: Map<string, ValueType>, known: Map<string, Tensor>, op: OpDef): void {
  if (node.op === 'Shape') {
    const t = types.get(node.inputs[0]);
    if (t?.kind !== 'tensor') return;
    const [start, end] = shapeRange(t.shape.length, node);
    const dims = t.shape.slice(start, end);
    if (isStatic(dims)) known.set(node.outputs[0], Tensor.fromNumbers('int64', [dims.length], dims));
    return;
  }
  if (!node.inputs.every((x) => !x || known.has(x))) return;
  const small = node.outputs.every((name) => {
    const t = types.get(name);
    return !name || (t?.kind === 'tensor' && isStatic(t.shape) && numel(t.shape) <= KNOWN_VALUE_LIMIT);
  });
  if (!small) return;
  const values = op.exec(node.inputs.map((x) => (x ? known.get(x) : undefined)), node);
  node.outputs.forEach((name, i) => {
    const v = values[i];
    if (name && v && !Array.isArray(v)) known.set(name, v);
  });
}

/** Values computed from constants alone (load-time preparation), evaluated on the CPU; undefined
 * when the value depends on a run-time input or is larger than `limit` elements on the way. */
export function loadTimeValue(graph: Graph, v: string, producer: Map<string, number>, limit = 1 << 22): Tensor | undefined {
  const c = graph.constants.get(v);
  if (c) return c.shape.reduce((a, b) => a * b, 1) <= limit ? loadConstant(c, v) : undefined;
  const p = producer.get(v);
  if (p === undefined) return undefined;
  const n = graph.nodes[p];
  const args: (Tensor | undefined)[] = [];
  for (const x of n.inputs) {
    if (!x) { args.push(undefined); continue; }
    const t = loadTimeValue(graph, x, producer, limit);
    if (!t) return undefined;
    args.push(t);
  }
  const outs = lookupOp(n)?.exec(args, n) as Tensor[] | undefined;
  const t = outs?.[n.outputs.indexOf(v)];
  return t && t.size <= limit ? t : undefined;
}
