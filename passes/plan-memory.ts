/**
 * plan-memory: one arena for every activation of a run, with an offset per buffer.
 *
 * Schedule: the graph's node order. `lateReads` (node index -> values): reads a node's kernel makes
 * beyond its graph inputs (the token scales of a deferred FP8 GEMM, compiler/codegen/dequant.ts).
 * Buffers: the outputs of launches (compiler/launches.ts) and the
 * graph inputs; a view (Reshape, Split, ...) aliases its input's buffer, extending its lifetime;
 * fused-kernel internals never reach memory; weights (and load-time weight preparation) live
 * outside the arena. Lifetime: [producing step, last reading step]; graph inputs and outputs to the
 * end (a replayed CUDA graph reads its inputs again).
 * In place: an element-wise kernel may write over an input of the same size that dies at that step.
 * Placement: greedy, each buffer at the lowest 256-byte-aligned offset that overlaps no placed
 * buffer whose lifetime intersects (TFLite's "greedy by size"), tried in three orders.
 *
 * Reports the arena size, the max-live lower bound (the most bytes alive at any step) and the naive
 * sum (one buffer each).
 */
import { bytesFor } from '../compiler/ir/dtype.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { consumers } from '../compiler/ir/graph.ts';
import { isLaunch, loadTimeNodes } from '../compiler/launches.ts';

export const ALIGN = 256;

export interface Buffer {
  value: string;
  bytes: number;
  first: number;
  last: number;
  offset: number;
  /** Set when later values were written in place into this buffer. */
  inPlaceOf?: string;
}

export interface MemoryPlan {
  arenaBytes: number;
  maxLiveBytes: number;
  naiveBytes: number;
  buffers: Buffer[];
  /** Every value that lives in the arena -> the buffer holding it (views and in-place outputs map to it). */
  location: Map<string, string>;
  /** Outputs written in place over an input's buffer at `step`. */
  inPlace: { value: string; into: string; step: number }[];
}

const IN_PLACE = new Set(['FusedKernel', 'Silu', 'Modulate', 'RoPE', 'Add', 'Mul', 'Sub', 'Div', 'Sigmoid', 'Gelu', 'Neg', 'Tanh', 'Cast']);
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

export function planMemory(graph: Graph, lateReads: ReadonlyMap<number, readonly string[]> = new Map()): MemoryPlan {
  const users = consumers(graph);
  const loadTime = loadTimeNodes(graph);
  const bytesOf = (v: string) => {
    const t = graph.types.get(v);
    return t?.kind === 'tensor' ? bytesFor(t.dtype, (t.shape as number[]).reduce((a, b) => a * b, 1)) : 0;
  };
  const location = new Map<string, string>();
  const buffers = new Map<string, Buffer>();
  const inPlace: { value: string; into: string; step: number }[] = [];
  const end = graph.nodes.length;
  // Graph inputs live to the end: a replayed run (a CUDA graph launched again without copying the
  // inputs in) must find them intact, never overwritten by a later value (run-time indices would fault).
  for (const input of graph.inputs) {
    location.set(input, input);
    buffers.set(input, { value: input, bytes: align(bytesOf(input)), first: 0, last: end, offset: 0 });
  }
  graph.nodes.forEach((node, i) => {
    if (loadTime.has(i)) return;
    const launch = isLaunch(graph, node, users);
    for (const o of node.outputs) {
      if (!o) continue;
      const base = !launch ? location.get(node.inputs[0]) : undefined;
      if (base) {
        location.set(o, base); // a view of its input's buffer
      } else {
        location.set(o, o);
        buffers.set(o, { value: o, bytes: align(bytesOf(o)), first: i, last: i, offset: 0 });
      }
    }
  });
  // Lifetimes: extended by every read (through views) and to the end for graph outputs.
  graph.nodes.forEach((node, i) => {
    for (const x of [...node.inputs, ...(lateReads.get(i) ?? [])]) {
      const b = x && location.get(x);
      if (b) buffers.get(b)!.last = Math.max(buffers.get(b)!.last, i);
    }
  });
  for (const o of graph.outputs) {
    const b = location.get(o);
    if (b) buffers.get(b)!.last = end;
  }
  // In place: an element-wise launch's output takes over the buffer of a same-size input that dies
  // there, read whole (not through a slice or a broadcast): the output becomes part of that buffer.
  graph.nodes.forEach((node, i) => {
    if (!IN_PLACE.has(node.op) || loadTime.has(i) || node.outputs.length !== 1) return;
    const out = buffers.get(node.outputs[0]);
    if (!out) return;
    for (const x of node.inputs) {
      const b = x && location.get(x);
      const src = b ? buffers.get(b) : undefined;
      if (src && src.last === i && !graph.inputs.includes(src.value) && bytesOf(x) === bytesOf(src.value) && bytesOf(x) === bytesOf(node.outputs[0])
        && !graph.outputs.includes(src.value)) {
        src.last = out.last;
        src.inPlaceOf = src.inPlaceOf ?? src.value;
        buffers.delete(out.value);
        for (const [v, loc] of location) if (loc === out.value) location.set(v, src.value);
        inPlace.push({ value: out.value, into: src.value, step: i });
        break;
      }
    }
  });
  const list = [...buffers.values()];
  const conflicts = (a: Buffer, b: Buffer) => a.first <= b.last && b.first <= a.last;
  // Greedy placement in a few orders (largest first; largest area first; earliest first); the
  // smallest arena wins.
  const orders: ((a: Buffer, b: Buffer) => number)[] = [
    (a, b) => b.bytes - a.bytes || a.first - b.first,
    (a, b) => b.bytes * (b.last - b.first + 1) - a.bytes * (a.last - a.first + 1) || b.bytes - a.bytes,
    (a, b) => a.first - b.first || b.bytes - a.bytes,
  ];
  let best: Map<Buffer, number> | undefined;
  let bestSize = Infinity;
  for (const order of orders) {
    const placed: Buffer[] = [];
    const offsets = new Map<Buffer, number>();
    let size = 0;
    for (const buf of [...list].sort(order)) {
      const busy = placed.filter((p) => conflicts(p, buf)).sort((a, b) => offsets.get(a)! - offsets.get(b)!);
      let offset = 0;
      for (const p of busy) {
        if (offset + buf.bytes <= offsets.get(p)!) break;
        offset = Math.max(offset, offsets.get(p)! + p.bytes);
      }
      offsets.set(buf, offset);
      placed.push(buf);
      size = Math.max(size, offset + buf.bytes);
    }
    if (size < bestSize) { bestSize = size; best = offsets; }
  }
  for (const b of list) b.offset = best?.get(b) ?? 0;
  const arenaBytes = Math.max(0, ...list.map((b) => b.offset + b.bytes));
  // Lower bound: the most bytes alive at any step (in-place pairs already share one buffer).
  let maxLiveBytes = 0;
  for (let step = 0; step <= end; step++) {
    let live = 0;
    for (const b of list) if (b.first <= step && step <= b.last) live += b.bytes;
    maxLiveBytes = Math.max(maxLiveBytes, live);
  }
  return { arenaBytes, maxLiveBytes, naiveBytes: list.reduce((a, b) => a + b.bytes, 0) + inPlace.reduce((a, p) => a + align(bytesOf(p.value)), 0), buffers: list, location, inPlace };
}
