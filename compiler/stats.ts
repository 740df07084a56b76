/**
 * Graph statistics for reports: nodes per op type, FLOPs (from each op's count: GEMMs,
 * convolutions, attention), and parameter bytes (constants at their stored dtype).
 */
import { bytesFor } from './ir/dtype.ts';
import { type Graph, isStatic, numel } from './ir/graph.ts';
import type { StaticTensorType } from './ops/op.ts';
import { lookupOp } from './ops/registry.ts';

export function opHistogram(graph: Graph): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of graph.nodes) counts[n.op] = (counts[n.op] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/** Total FLOPs of one run of the graph; the graph must be fully inferred with static shapes. */
export function countFlops(graph: Graph): number {
  let total = 0;
  for (const n of graph.nodes) {
    const op = lookupOp(n);
    if (!op?.flops) continue;
    const typeOf = (x: string) => graph.types.get(x) as StaticTensorType;
    const ins = n.inputs.map((x) => (x ? typeOf(x) : undefined)).filter((t): t is StaticTensorType => !!t);
    const outs = n.outputs.filter(Boolean).map(typeOf);
    if ([...ins, ...outs].some((t) => t.kind !== 'tensor' || !isStatic(t.shape))) continue;
    total += op.flops(n, ins, outs);
  }
  return total;
}

export function parameterBytes(graph: Graph): { count: number; bytes: number } {
  let count = 0, bytes = 0;
  for (const c of graph.constants.values()) {
    const n = numel(c.shape);
    count += n;
    bytes += bytesFor(c.dtype, n);
  }
  return { count, bytes };
}
