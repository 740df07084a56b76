/**
 * The IR: an immutable SSA graph.
 *
 * Every value is named once (by the node output or graph input/constant that defines it) and has a
 * ValueType: a tensor (dtype + shape, dims numeric or symbolic) or a sequence of tensors. Nodes are
 * kept in topological order. Constants (initializers) are lazy: an external one is a reference
 * (file, offset, length) that is read only when something needs its bytes. Passes never edit a
 * Graph; they build a new one (see GraphBuilder in rewrite.ts).
 */
import type { DType } from './dtype.ts';
import type { Tensor } from './tensor.ts';

/** A dimension: a number when static, a name (e.g. "img_tokens") when symbolic. */
export type Dim = number | string;

export interface TensorType {
  readonly kind: 'tensor';
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export interface SequenceType {
  readonly kind: 'sequence';
  readonly dtype: DType;
  /** Element types when known (after SplitToSequence with static split sizes). */
  readonly elements: readonly TensorType[];
}

export type ValueType = TensorType | SequenceType;

export type AttrValue = number | string | readonly number[] | readonly string[] | Tensor;

/** The body of a fused node: a small graph over the node's inputs (formal names) to its outputs. */
export interface Subgraph {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly nodes: readonly Node[];
}

export interface Node {
  readonly op: string;
  readonly domain: string;
  /** Value names; '' marks an omitted optional input. */
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /** The exporter's node name, kept for error messages only (never matched on). */
  readonly name: string;
  /** Fused nodes (dc.FusedKernel) carry the subgraph they compute. */
  readonly body?: Subgraph;
}

export type ConstantSource =
  | { readonly kind: 'inline'; readonly tensor: Tensor }
  | { readonly kind: 'external'; readonly path: string; readonly offset: number; readonly length: number };

export interface Constant {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly source: ConstantSource;
}

export interface Graph {
  readonly name: string;
  /** Version of the default ("ai.onnx") opset the graph was written against. */
  readonly opset: number;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly nodes: readonly Node[];
  readonly types: ReadonlyMap<string, ValueType>;
  readonly constants: ReadonlyMap<string, Constant>;
  /** Where the graph came from, for messages. */
  readonly file: string;
  /** Samples one run computes, when rebatched from a batch-1 export (ir/rebatch.ts); 1 when absent. */
  readonly batch?: number;
}

export const tensorType = (dtype: DType, shape: readonly Dim[]): TensorType => ({ kind: 'tensor', dtype, shape });

export function isStatic(shape: readonly Dim[]): shape is readonly number[] {
  return shape.every((d) => typeof d === 'number');
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly Dim[]): string {
  return `[${shape.join(',')}]`;
}

export function formatType(t: ValueType): string {
  return t.kind === 'tensor' ? `${t.dtype}${formatShape(t.shape)}` : `seq<${t.dtype}>(${t.elements.length})`;
}

/** How a node is named in messages: its exporter name, else op and position. */
export function describeNode(node: Node, index?: number): string {
  const where = node.name ? `'${node.name}'` : index !== undefined ? `#${index}` : `-> ${node.outputs[0]}`;
  return `${node.op} node ${where}`;
}

/** Symbolic dims of the graph inputs, in first-seen order. */
export function symbolicDims(graph: Graph): string[] {
  const seen = new Set<string>();
  for (const name of graph.inputs) {
    const t = graph.types.get(name);
    if (t?.kind === 'tensor') for (const d of t.shape) if (typeof d === 'string') seen.add(d);
  }
  return [...seen];
}

/** Map of value name -> index of the node producing it. */
export function producers(graph: Graph): Map<string, number> {
  const map = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.outputs.forEach((o) => o && map.set(o, i)));
  return map;
}

/** Map of value name -> indices of the nodes consuming it. */
export function consumers(graph: Graph): Map<string, number[]> {
  const map = new Map<string, number[]>();
  graph.nodes.forEach((n, i) => {
    for (const x of n.inputs) {
      if (!x) continue;
      const list = map.get(x);
      if (list) list.push(i);
      else map.set(x, [i]);
    }
  });
  return map;
}
