/**
 * Deferred dequantization of FP8 GEMM outputs: which GEMMs write their raw sums and leave the
 * scales (and bias) to the kernels that read them.
 *
 *   y = QLinear(xq, xs, wq, ws[, b])       y[t, f] = xs[t] · ws[f] · Σ_k xq[t, k] · wq[f, k]  (+ b[f])
 *
 * cuBLASLt computes this with outer-vector scales (per token, per channel) and a bias epilogue, but
 * that mode runs slower than its plain FP8 GEMM with unit scales: on the H100 the Flux.2 [dev]
 * step's 160 FP8 GEMMs took 222-225 ms with the scales and 180.5 ms without, Qwen-Image's 478
 * took 57.0 against 46.5 ms (bench/RESULTS.md, "Deferred dequantization"). Every reader of a GEMM
 * output is a kernel of ours that loads it anyway, so a GEMM is deferred — launched with unit
 * scales and no bias, writing r = Σ xq·wq in its output type — when every launch that reads it
 * (directly or through a view) can apply y = r · xs[t] · ws[f] (+ b[f]) as it loads:
 *
 *   element-wise kernels  (row, vectorised flat and flat) reading it as rows of tokens: the
 *                         input's row r is token r + tok0 and its column c feature f0 + c
 *                         (elementwise.ts EwInput.dequant; render.ts applies it after each load)
 *   AttentionPack         Q/K/V segments whose token and head strides keep each head's D values
 *                         inside one row of the output (attention.ts PackSegment.dequant)
 *
 * Anything else reading it (data movement, another GEMM, a graph output, a broadcast read) keeps
 * the GEMM's own scales. Decided before the memory plan: a deferred GEMM's xs is read by its
 * readers, after the GEMM (lateReads), so it must live until the last of them. The values differ from the scaled GEMM's only in where bf16 rounding
 * happens (of r instead of y); the reference executor keeps QLinear's definition.
 */
import { amaxWindow, gluWindow, isResidualQLinear } from '../ops/quant.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { resolveView } from './views.ts';

/** A deferred GEMM's scales: per-token xs (one per row of y), per-channel ws and the bias (N values each). */
export interface Deferred { xs: string; ws: string; bias?: string; n: number }

/** How a launch reads its inputs (plan.ts routes each node the same way). */
export type ReaderKind = 'elementwise' | 'pack' | 'other';

const count = (graph: Graph, v: string) => ((graph.types.get(v) as unknown as { shape: number[] } | undefined)?.shape ?? [NaN]).reduce((a, b) => a * b, 1);

/** The launch output a value is a view of (itself when it is one); undefined for what no launch writes. */
function rootOf(graph: Graph, v: string): string | undefined {
  try {
    return resolveView(graph, v, 'deferred dequantization').root;
  } catch {
    return undefined;
  }
}

/**
 * The GEMMs to defer. `launches` are the plan's launch nodes; `kindOf` says how one reads (asked
 * only of the readers of an FP8 GEMM); `undeferrable` builds a reader's descriptor with the
 * candidates and names the roots it cannot dequantize.
 */
export function deferredGemms(graph: Graph, launches: readonly Node[], kindOf: (node: Node) => ReaderKind, undeferrable: (node: Node, kind: ReaderKind, candidates: ReadonlyMap<string, Deferred>) => string[]): Map<string, Deferred> {
  const candidates = new Map<string, Deferred>();
  const roots = new Map<string, string | undefined>();
  const root = (v: string) => (roots.has(v) ? roots.get(v) : roots.set(v, rootOf(graph, v)).get(v));
  for (const node of launches) {
    // A residual or GLU QLinear's value is not its GEMM's (fuse-gemm-residual, fuse-gemm-glu), an amax one reduces
    // its scaled values (fuse-vquant): never deferred.
    if (node.domain !== 'dc' || node.op !== 'QLinear' || node.attrs.format !== 'fp8' || isResidualQLinear(node) || amaxWindow(node) || gluWindow(node)) continue;
    const y = node.outputs[0];
    const [xq, xs, , ws, b] = node.inputs;
    const shape = (graph.types.get(y) as unknown as { shape: number[]; dtype: string }) ?? undefined;
    if (!shape || !['bfloat16', 'float16', 'float32'].includes(shape.dtype)) continue;
    const n = shape.shape.at(-1)!;
    if (count(graph, xs) !== count(graph, xq) / (graph.types.get(xq) as unknown as { shape: number[] }).shape.at(-1)! || count(graph, ws) !== n || (b && count(graph, b) !== n)) continue;
    candidates.set(y, { xs, ws, ...(b ? { bias: b } : {}), n });
  }
  for (const o of graph.outputs) candidates.delete(root(o) ?? o);
  if (!candidates.size) return candidates;
  const readers = new Map<string, { node: Node; kind: ReaderKind }[]>();
  const kinds = new Map<Node, ReaderKind>();
  for (const node of launches) {
    for (const v of new Set(node.inputs)) {
      const r = v ? root(v) : undefined;
      if (r === undefined || !candidates.has(r)) continue;
      if (!kinds.has(node)) kinds.set(node, kindOf(node));
      readers.set(r, [...(readers.get(r) ?? []), { node, kind: kinds.get(node)! }]);
    }
  }
  for (const root of [...candidates.keys()]) {
    const list = readers.get(root) ?? [];
    if (!list.length || list.some((l) => l.kind === 'other')) candidates.delete(root);
  }
  // Each reader says which of its inputs it cannot dequantize (a per-input property, so one pass).
  const refused = new Set<string>();
  for (const [, list] of readers) for (const l of list) for (const r of undeferrable(l.node, l.kind, candidates)) refused.add(r);
  for (const r of refused) candidates.delete(r);
  return candidates;
}

/** Per node index, the token scales (xs) it reads as a reader of a deferred GEMM: reads the memory plan must keep alive. */
export function lateReads(graph: Graph, deferred: ReadonlyMap<string, Deferred>): Map<number, string[]> {
  const out = new Map<number, string[]>();
  if (!deferred.size) return out;
  graph.nodes.forEach((node, i) => {
    const xs = [...new Set(node.inputs.map((v) => (v ? deferred.get(rootOf(graph, v) ?? '')?.xs : undefined)).filter((x): x is string => !!x))];
    if (xs.length) out.set(i, xs);
  });
  return out;
}

/**
 * Whether rows of a kernel's input are consecutive rows of an [.., n] matrix: the input's row
 * index r (mixed radix over `rowDims`) is at r · n elements. Broadcast (stride 0) rows are not.
 */
export function rowsAreTokens(rowDims: readonly { size: number; stride: number }[], n: number): boolean {
  let expected = n, any = false;
  for (let i = rowDims.length - 1; i >= 0; i--) {
    const { size, stride } = rowDims[i];
    if (size === 1) continue;
    if (stride !== expected) return false;
    expected *= size;
    any = true;
  }
  return any;
}
