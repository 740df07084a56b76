/**
 * Rewriter: collects the edits a pass decides on, then builds a new Graph in one go (edits are
 * applied after matching, never during). Supports removing nodes, inserting nodes, aliasing a value
 * to another (all uses redirected), adding constants, and dropping unused constants.
 *
 * Graph outputs keep their names: when an output is aliased away, the value it now equals is
 * renamed to the output's name if that is safe, else an Identity keeps the name.
 */
import type { Constant, Graph, Node, ValueType } from '../compiler/ir/graph.ts';
import type { Tensor } from '../compiler/ir/tensor.ts';

export class Rewriter {
  private readonly removed = new Set<number>();
  private readonly inserted = new Map<number, Node[]>();
  private readonly alias = new Map<string, string>();
  private readonly newConstants = new Map<string, Constant>();
  private readonly newTypes = new Map<string, ValueType>();

  constructor(readonly graph: Graph) {}

  removeNode(index: number): void {
    this.removed.add(index);
  }

  /** Inserts nodes just before node `index` (or at the end for index = nodes.length). */
  insertBefore(index: number, nodes: Node[], types: ReadonlyMap<string, ValueType>): void {
    this.inserted.set(index, [...(this.inserted.get(index) ?? []), ...nodes]);
    for (const [k, v] of types) this.newTypes.set(k, v);
  }

  /** Every use of `from` becomes a use of `to`. */
  replaceUses(from: string, to: string): void {
    this.alias.set(from, to);
  }

  addConstant(name: string, tensor: Tensor): void {
    this.newConstants.set(name, { dtype: tensor.dtype, shape: tensor.shape, source: { kind: 'inline', tensor } });
    this.newTypes.set(name, { kind: 'tensor', dtype: tensor.dtype, shape: tensor.shape });
  }

  get changed(): boolean {
    return this.removed.size + this.inserted.size + this.alias.size + this.newConstants.size > 0;
  }

  private resolve(name: string): string {
    let n = name;
    for (let hops = 0; this.alias.has(n) && hops < 1e6; hops++) n = this.alias.get(n)!;
    return n;
  }

  apply(): Graph {
    const g = this.graph;
    const constants = new Map(g.constants);
    for (const [k, v] of this.newConstants) constants.set(k, v);
    const types = new Map(g.types);
    for (const [k, v] of this.newTypes) types.set(k, v);

    let nodes: Node[] = [];
    g.nodes.forEach((n, i) => {
      nodes.push(...(this.inserted.get(i) ?? []));
      if (!this.removed.has(i)) nodes.push(n);
    });
    nodes.push(...(this.inserted.get(g.nodes.length) ?? []));

    // Graph outputs keep their names.
    const rename = new Map<string, string>();
    const tail: Node[] = [];
    const producedBy = new Set(nodes.flatMap((n) => n.outputs));
    for (const o of g.outputs) {
      const target = this.resolve(o);
      if (target === o) continue;
      const safe = producedBy.has(target) && !g.outputs.includes(target) && ![...rename.values()].includes(target) && !rename.has(target);
      if (safe) rename.set(target, o);
      else tail.push({ op: 'Identity', domain: '', inputs: [target], outputs: [o], attrs: {}, name: '' });
    }
    const map = (x: string) => {
      if (!x) return x;
      const r = this.resolve(x);
      return rename.get(r) ?? r;
    };
    nodes = [...nodes, ...tail].map((n) => ({ ...n, inputs: n.inputs.map(map), outputs: n.outputs.map((x) => rename.get(x) ?? x) }));
    for (const [from, to] of rename) {
      const t = types.get(from);
      if (t) types.set(to, t);
    }
    // Keep only constants still used.
    const used = new Set(nodes.flatMap((n) => n.inputs));
    for (const o of g.outputs) used.add(o);
    for (const k of [...constants.keys()]) if (!used.has(k)) constants.delete(k);
    const live = new Set([...g.inputs, ...constants.keys(), ...nodes.flatMap((n) => n.outputs)]);
    for (const k of [...types.keys()]) if (!live.has(k)) types.delete(k);
    return { ...g, nodes, constants, types };
  }
}
