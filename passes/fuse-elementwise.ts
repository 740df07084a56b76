/**
 * fuse-elementwise: maximal groups of element-wise ops and last-axis row reductions become one
 * dc.FusedKernel whose body is the group (one pass over memory instead of one per op).
 *
 *   r = Add(x, Mul(gate, attn))          ┐
 *   n = LayerNormalization(r)            │  =>  r, m = FusedKernel(x, gate, attn, scale, shift)
 *   m = Modulate(n, scale, shift)        ┘        body: the three nodes; r and m leave the kernel
 *
 * Grouping: in graph order, a fusible node joins the group of a fusible producer with the same
 * output shape, provided that creates no cycle (no input of the node reaches the group through a
 * node outside it); otherwise it starts a group. Inputs from outside may broadcast (modulation
 * vectors, norm weights). GEMMs, attention, convolutions and data movement are never inside: they
 * are what the kernels feed. A value leaves the kernel when anything outside uses it. Groups of
 * one node stay as they are. Nodes are re-sorted topologically afterwards.
 *
 * Last-axis Concat (Flux.2's single blocks: attention output ‖ MLP activation, then the per-token
 * Quantize ahead of to_out) starts a group of the concatenated shape that a row reduction must
 * join: the row kernel reads each 16-byte vector of a row from the part it lies in (part widths
 * multiples of 8), so the concatenation is never written. A part made by a SwiGLU that nothing
 * else reads (and that is a group of its own) becomes the part's prologue, inside the group:
 *
 *   a = SwiGLU(h)                      ┐
 *   c = Concat(attn, a){axis -1}       │  =>  q, s = FusedKernel(attn, h)
 *   q, s = Quantize(c){fp8, axis -1}   ┘        body: the three nodes (one row kernel, fp8 out once)
 *
 * A group with a Concat but no row reduction gives the Concat (and its prologue) back.
 */
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { producers } from '../compiler/ir/graph.ts';
import type { Pass } from './pass.ts';
import { ROW_OPS } from '../compiler/ops/norm.ts';

const ELEMENTWISE = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Sin', 'Cos', 'Tanh', 'Sigmoid',
  'Relu', 'Gelu', 'Cast', 'Where', 'Clip', 'Max', 'Min', 'IsNaN', 'Not', 'And', 'Or', 'Equal', 'Greater', 'GreaterOrEqual',
  'Less', 'LessOrEqual', 'LayerNormalization', 'RMSNormalization', 'Softmax',
]);
const DC_ELEMENTWISE = new Set(['Silu', 'Modulate', 'RoPE', 'SwiGLU', 'Quantize']);


/** A Concat on the last axis of float parts whose widths are multiples of 8 (whole 16-byte vectors). */
function concatFusible(graph: Graph, n: Node): boolean {
  if (n.op !== 'Concat' || n.domain !== '' || n.body || n.inputs.length < 2 || n.inputs.some((x) => !x)) return false;
  const types = [...n.inputs, n.outputs[0]].map((v) => graph.types.get(v));
  if (types.some((t) => t?.kind !== 'tensor' || !['float32', 'bfloat16', 'float16'].includes(t.dtype))) return false;
  const shapes = types.map((t) => (t as { shape: readonly unknown[] }).shape);
  const rank = shapes.at(-1)!.length;
  const axis = (n.attrs.axis as number | undefined) ?? 0;
  return rank > 0 && (axis === -1 || axis === rank - 1) && shapes.every((s) => s.length === rank && typeof s[rank - 1] === 'number' && (s[rank - 1] as number) % 8 === 0);
}

function fusible(graph: Graph, n: Node, concat: boolean): boolean {
  if (concat && concatFusible(graph, n)) return true;
  if (n.body || !(n.domain === '' ? ELEMENTWISE.has(n.op) : n.domain === 'dc' && DC_ELEMENTWISE.has(n.op))) return false;
  // Quantize (q, scale) is row-local for fp8/bf16 (per-token scales); nvfp4's per-tensor scale is not.
  if (n.op === 'Quantize' && (n.attrs.format === 'nvfp4' || ![-1, undefined].includes(n.attrs.axis as number | undefined))) return false;
  if (n.outputs.filter(Boolean).length !== (n.op === 'Quantize' ? 2 : 1)) return false;
  const rank = (graph.types.get(n.outputs[0]) as { shape: readonly unknown[] }).shape.length;
  if ((n.op === 'LayerNormalization' || n.op === 'RMSNormalization') && ![-1, rank - 1].includes((n.attrs.axis as number | undefined) ?? -1)) return false;
  if (n.op === 'Softmax' && ![-1, rank - 1].includes((n.attrs.axis as number | undefined) ?? -1)) return false;
  // Only values of float/bool type, not shape arithmetic on small int tensors.
  const t = graph.types.get(n.outputs[0]);
  return !!t && t.kind === 'tensor' && t.dtype !== 'int64' && t.dtype !== 'int32';
}

const shapeKey = (graph: Graph, v: string) => {
  const t = graph.types.get(v);
  return t?.kind === 'tensor' ? t.shape.join(',') : '';
};

/** Stable topological sort (Kahn's algorithm, ties broken by original position). */
export function toposort(nodes: readonly Node[], available: ReadonlySet<string>): Node[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const pending = nodes.map((n) => new Set(n.inputs.filter((x) => x && !available.has(x) && producer.has(x)).map((x) => producer.get(x)!)));
  const users = nodes.map(() => [] as number[]);
  pending.forEach((deps, i) => deps.forEach((d) => users[d].push(i)));
  const ready: number[] = [];
  pending.forEach((deps, i) => deps.size === 0 && ready.push(i));
  const order: Node[] = [];
  while (ready.length) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    order.push(nodes[i]);
    for (const u of users[i]) {
      pending[u].delete(i);
      if (pending[u].size === 0) ready.push(u);
    }
  }
  if (order.length !== nodes.length) throw new Error('toposort: the graph has a cycle');
  return order;
}

/** The pass; `concat: false` leaves every Concat to the data-movement kernels (benchmarks compare). */
export function makeFuseElementwise(options: { concat: boolean } = { concat: true }): Pass {
  return {
  name: 'fuse-elementwise',
  rules: ['element-wise group => FusedKernel'],
  run(graph, ctx) {
    const producer = producers(graph);
    const groupOf = new Map<number, number>(); // node index -> group id
    const members = new Map<number, number[]>();
    const groupShape = new Map<number, string>(); // group id -> the shape its members share
    const fusibleAt = graph.nodes.map((n) => fusible(graph, n, options.concat));
    const usersOf = (v: string) => graph.nodes.filter((n) => n.inputs.includes(v));

    /**
     * Does value x (computed outside group g) depend on any member of g? A node in another group
     * stands for its whole group (the group runs as one kernel), so the walk continues through all
     * of that group's inputs: a cycle through a second group is caught too.
     */
    const reaches = (x: string, g: number): boolean => {
      const seen = new Set<number>();
      const stack = [producer.get(x)];
      while (stack.length) {
        const i = stack.pop();
        if (i === undefined || seen.has(i)) continue;
        seen.add(i);
        const h = groupOf.get(i);
        if (h === g) return true;
        const nodes = h !== undefined ? members.get(h)! : [i];
        for (const j of nodes) {
          seen.add(j);
          for (const y of graph.nodes[j].inputs) if (y) stack.push(producer.get(y));
        }
      }
      return false;
    };

    graph.nodes.forEach((node, i) => {
      if (!fusibleAt[i]) return;
      const shape = shapeKey(graph, node.outputs[0]);
      if (node.op === 'Concat') {
        // A group of the concatenated shape; SwiGLU parts read by nothing else become its prologue.
        const list: number[] = [];
        for (const x of node.inputs) {
          const p = producer.get(x);
          if (p === undefined || graph.nodes[p].op !== 'SwiGLU' || members.get(groupOf.get(p) ?? -1)?.length !== 1) continue;
          if (graph.outputs.includes(x) || usersOf(x).length !== 1 || node.inputs.filter((y) => y === x).length !== 1) continue;
          members.delete(groupOf.get(p)!);
          groupOf.set(p, i);
          list.push(p);
        }
        groupOf.set(i, i);
        members.set(i, [...list, i]);
        groupShape.set(i, shape);
        return;
      }
      const candidates = [...new Set(node.inputs.map((x) => producer.get(x)).filter((p): p is number => p !== undefined && groupOf.has(p)).map((p) => groupOf.get(p)!))];
      for (const g of candidates) {
        if (groupShape.get(g) !== shape) continue;
        const outside = node.inputs.filter((x) => x && groupOf.get(producer.get(x) ?? -1) !== g);
        if (outside.some((x) => reaches(x, g))) continue;
        groupOf.set(i, g);
        members.get(g)!.push(i);
        return;
      }
      groupOf.set(i, i);
      members.set(i, [i]);
      groupShape.set(i, shape);
    });

    // A Concat is fused only into a row kernel: without a row reduction the group gives it back.
    for (const [g, list] of [...members]) {
      const concat = list.find((j) => graph.nodes[j].op === 'Concat');
      if (concat === undefined || list.some((j) => ROW_OPS.has(graph.nodes[j].op))) continue;
      const prologue = list.filter((j) => j < concat && graph.nodes[concat].inputs.includes(graph.nodes[j].outputs[0]));
      const rest = list.filter((j) => j !== concat && !prologue.includes(j));
      members.delete(g);
      for (const j of [...prologue, concat]) { groupOf.set(j, j); members.set(j, [j]); }
      if (rest.length) { rest.forEach((j) => groupOf.set(j, rest[0])); members.set(rest[0], rest); }
    }

    const outputsUsedOutside = (group: Set<number>, value: string) =>
      graph.outputs.includes(value) || graph.nodes.some((n, j) => !group.has(j) && n.inputs.includes(value));
    const replaced = new Map<number, Node | null>();
    let count = 0;
    for (const list of members.values()) {
      if (list.length < 2) continue;
      const group = new Set(list);
      const body = list.map((j) => graph.nodes[j]);
      const produced = new Set(body.flatMap((n) => n.outputs));
      const inputs = [...new Set(body.flatMap((n) => n.inputs).filter((x) => x && !produced.has(x)))];
      const outputs = body.flatMap((n) => n.outputs).filter((o) => o && outputsUsedOutside(group, o));
      const fused: Node = {
        op: 'FusedKernel', domain: 'dc', inputs, outputs, attrs: { ops: body.map((n) => n.op) }, name: body[0].name,
        body: { inputs, outputs, nodes: body },
      };
      list.forEach((j, k) => replaced.set(j, k === list.length - 1 ? fused : null));
      count++;
    }
    if (count === 0) return graph;
    ctx.count('element-wise group => FusedKernel', count);
    const nodes: Node[] = [];
    graph.nodes.forEach((n, i) => {
      const r = replaced.get(i);
      if (r === undefined) nodes.push(n);
      else if (r) nodes.push(r);
    });
    return { ...graph, nodes: toposort(nodes, new Set([...graph.inputs, ...graph.constants.keys()])) };
  },
  };
}

export const fuseElementwise: Pass = makeFuseElementwise();
