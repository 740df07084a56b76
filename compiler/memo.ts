/**
 * Step memoization: which launches of a denoising step compute nothing but a function of the step's
 * small inputs (the timestep, a guidance scale: graph inputs of at most MEMO_INPUT_BYTES) and the
 * weights, and which of their values the rest of the step reads. Qwen-Image's modulation (every
 * block's shift / scale / gate from the timestep embedding: one GEMV over 6.8 GB of weights, 2.5-2.8
 * ms a step on an H100 80GB HBM3 in the profiles of session 18's call B12 and session 19's V2-V5,
 * bench/RESULTS.md) is such a computation; the same timesteps recur in every request of one size
 * and step count, so the runtime (runtime/gpu/model.ts) keeps those values per input key and replays
 * a second graph of the step that restores them instead of computing them.
 *
 * The plan (manifest `memo`), over the launch plan's indices:
 *   inputs    the small graph inputs the memoized launches depend on (the key: their bytes);
 *   launches  the memoized launches, skipped by the restoring graph;
 *   values    the arena buffers (offset, bytes) they write that another launch (any argument of it)
 *             or a graph output reads, each written by one memoized launch: saved after it (`last`) by
 *             the filling graph, restored where it ran (`first`, the same) by the restoring graph, so
 *             every buffer holds what it holds in the full step from that point on.
 * A memoized launch writing a buffer another launch also writes (an in-place output, a shared
 * concatenation), or one of several memoized writers of a saved buffer (an in-place chain), runs in
 * the restoring graph too, its inputs then restored as well. A launch plan with a launch that is no
 * node's gets no memo.
 */
import { bytesFor } from './ir/dtype.ts';
import type { Graph, Node } from './ir/graph.ts';
import type { MemoryPlan } from '../passes/plan-memory.ts';

/** Graph inputs of at most this many bytes are a step's key inputs (timestep, guidance); larger ones never are. */
export const MEMO_INPUT_BYTES = 256;

export interface MemoValue { value: string; offset: number; bytes: number; first: number; last: number }
export interface MemoPlan { inputs: string[]; launches: number[]; values: MemoValue[] }

export function memoPlan(graph: Graph, memory: MemoryPlan, launches: readonly { node: string; kind: string; args: readonly { value: string }[] }[]): MemoPlan | undefined {
  const typeBytes = (v: string) => {
    const t = graph.types.get(v);
    return t && t.kind === 'tensor' && t.shape.every((d) => typeof d === 'number') ? bytesFor(t.dtype, (t.shape as number[]).reduce((a, b) => a * b, 1)) : Infinity;
  };
  const small = new Set(graph.inputs.filter((v) => typeBytes(v) <= MEMO_INPUT_BYTES));
  // The graph inputs each value depends on (weights and constants: none).
  const deps = new Map<string, Set<string>>(graph.inputs.map((v) => [v, new Set([v])]));
  const memoNode = new Map<Node, boolean>();
  for (const node of graph.nodes) {
    const d = new Set<string>();
    for (const v of node.inputs) for (const x of deps.get(v) ?? []) d.add(x);
    for (const v of node.outputs) if (v) deps.set(v, d);
    memoNode.set(node, [...d].every((x) => small.has(x)));
  }
  const byName = new Map(graph.nodes.map((n) => [n.outputs[0], n]));
  const indices = launches.map((_, i) => i).filter((i) => launches[i].kind !== 'pending');
  // Fail closed: a launch that is no node's (a GroupedGemm's halves launched apart) has reads and writes this cannot see.
  if (indices.some((i) => !byName.has(launches[i].node))) return undefined;
  const nodeOf = (i: number) => byName.get(launches[i].node)!;
  const root = (v: string) => (v ? memory.location.get(v) : undefined);
  const writes = (i: number) => new Set(nodeOf(i).outputs.map(root).filter((r): r is string => !!r));
  // What a launch reads: every argument's buffer but its own outputs' (arguments, not node inputs: a
  // deferred GEMM's readers also take its scales).
  const reads = (i: number) => { const w = writes(i); return launches[i].args.map((a) => root(a.value)).filter((r): r is string => !!r && !w.has(r)); };
  const memo = new Set(indices.filter((i) => memoNode.get(nodeOf(i))));
  // Buffers another launch writes too keep their memoized writers in the restoring graph.
  const writtenElsewhere = new Set(indices.filter((i) => !memo.has(i)).flatMap((i) => [...writes(i)]));
  for (const i of [...memo]) if ([...writes(i)].some((r) => writtenElsewhere.has(r))) memo.delete(i);
  const buffers = new Map(memory.buffers.map((b) => [b.value, b]));
  // A saved buffer is restored whole where its first writer ran: with more than one memoized writer (an
  // in-place chain) a reader between them would see the last one's bytes, so its writers run instead.
  // Demoting writers turns their inputs into buffers the restoring graph reads: repeat until stable.
  for (;;) {
    const read = new Set([...indices.filter((i) => !memo.has(i)).flatMap(reads), ...graph.outputs.map(root)]);
    const writers = new Map<string, number[]>();
    for (const i of [...memo].sort((a, b) => a - b)) for (const r of writes(i)) if (read.has(r)) writers.set(r, [...(writers.get(r) ?? []), i]);
    const chained = [...writers.values()].filter((w) => w.length > 1).flat();
    if (chained.length) { for (const i of chained) memo.delete(i); continue; }
    if (!memo.size || !writers.size) return undefined;
    const values = [...writers].map(([r, [i]]) => ({ value: r, offset: buffers.get(r)!.offset, bytes: buffers.get(r)!.bytes, first: i, last: i }));
    const used = new Set([...memo].flatMap((i) => [...(deps.get(nodeOf(i).outputs[0]) ?? [])]));
    return { inputs: graph.inputs.filter((v) => used.has(v)), launches: [...memo].sort((a, b) => a - b), values };
  }
}
