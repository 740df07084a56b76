/**
 * Small pattern helpers shared by the rewrite rules, so each rule reads like the subgraph it
 * matches and one rule covers every exporter's variant:
 *
 *   m.def(x)                 the node producing x (undefined for inputs/constants)
 *   m.op(x, 'Mul')           that node if it is a Mul (domain '')
 *   m.skipCasts(x)           x with any chain of float Casts stripped (bf16 exports wrap maths in casts)
 *   m.commutative(node, f)   tries f(a, b) and f(b, a) on a binary node's inputs
 *   m.scalar(x)              x's value when it is a compile-time constant with one distinct value
 *   m.onlyUsedBy(x, nodes)   every use of x is inside `nodes` (so fusing them loses nothing)
 *
 * Rules never look at node or tensor names.
 */
import { isFloat } from '../compiler/ir/dtype.ts';
import type { Graph, Node, TensorType } from '../compiler/ir/graph.ts';
import { consumers, producers } from '../compiler/ir/graph.ts';
import type { Tensor } from '../compiler/ir/tensor.ts';
import { loadConstant } from '../compiler/onnx/constants.ts';

export class Matcher {
  private readonly producer: Map<string, number>;
  private readonly users: Map<string, number[]>;

  constructor(readonly graph: Graph, readonly known: ReadonlyMap<string, Tensor>) {
    this.producer = producers(graph);
    this.users = consumers(graph);
  }

  indexOf(node: Node): number {
    return this.producer.get(node.outputs.find(Boolean)!)!;
  }

  def(x: string | undefined): Node | undefined {
    if (!x) return undefined;
    const i = this.producer.get(x);
    return i === undefined ? undefined : this.graph.nodes[i];
  }

  op(x: string | undefined, ...ops: string[]): Node | undefined {
    const n = this.def(x);
    return n && n.domain === '' && ops.includes(n.op) ? n : undefined;
  }

  dcOp(x: string | undefined, op: string): Node | undefined {
    const n = this.def(x);
    return n && n.domain === 'dc' && n.op === op ? n : undefined;
  }

  type(x: string): TensorType {
    const t = this.graph.types.get(x);
    if (t?.kind !== 'tensor') throw new Error(`no tensor type for ${x}`);
    return t;
  }

  shape(x: string): number[] {
    return this.type(x).shape as number[];
  }

  /** Strips Casts between float types (the value is the same up to rounding). */
  skipCasts(x: string): string {
    let v = x;
    for (;;) {
      const n = this.op(v, 'Cast');
      if (!n || !isFloat(this.type(n.inputs[0]).dtype) || !isFloat(this.type(v).dtype)) return v;
      v = n.inputs[0];
    }
  }

  /** Strips only Casts that widen exactly (bf16/f16 -> f32, f32 -> f64): the value is identical. */
  skipUpcasts(x: string): string {
    const exact: Record<string, string[]> = { bfloat16: ['float32', 'float64'], float16: ['float32', 'float64'], float32: ['float64'] };
    let v = x;
    for (let n = this.op(v, 'Cast'); n && exact[this.type(n.inputs[0]).dtype]?.includes(this.type(v).dtype); n = this.op(v, 'Cast')) v = n.inputs[0];
    return v;
  }

  /** Tries `f` on (a, b) then (b, a); returns the first non-undefined result. */
  commutative<T>(node: Node, f: (a: string, b: string) => T | undefined): T | undefined {
    return f(node.inputs[0], node.inputs[1]) ?? f(node.inputs[1], node.inputs[0]);
  }

  value(x: string | undefined): Tensor | undefined {
    if (!x) return undefined;
    const k = this.known.get(x);
    if (k) return k;
    const c = this.graph.constants.get(x);
    return c && c.source.kind === 'inline' ? loadConstant(c, x) : undefined;
  }

  /** The single value of a constant whose elements are all equal (a broadcast scalar). */
  scalar(x: string | undefined): number | undefined {
    const t = this.value(x);
    if (!t || t.size === 0 || t.size > 4096) return undefined;
    const first = t.get(0);
    for (let i = 1; i < t.size; i++) if (t.get(i) !== first) return undefined;
    return first;
  }

  /** Every consumer of x is one of `nodes`, and x is not a graph output. */
  onlyUsedBy(x: string, nodes: readonly Node[]): boolean {
    if (this.graph.outputs.includes(x)) return false;
    const set = new Set(nodes.map((n) => this.indexOf(n)));
    return (this.users.get(x) ?? []).every((u) => set.has(u));
  }

  usesOf(x: string): Node[] {
    return (this.users.get(x) ?? []).map((u) => this.graph.nodes[u]);
  }

  isConstant(x: string): boolean {
    return this.graph.constants.has(x) || this.known.has(x);
  }
}

/** Axes of a Reduce, Squeeze or Unsqueeze node (input 1 in opset 18, else the attribute). */
export function axesOf(m: Matcher, node: Node): number[] | undefined {
  return node.inputs[1] ? m.value(node.inputs[1])?.toNumbers() : (node.attrs.axes as number[] | undefined)?.slice();
}

export const lastAxis = (axes: number[] | undefined, rank: number): boolean =>
  !!axes && axes.length === 1 && (axes[0] === -1 || axes[0] === rank - 1);
