/**
 * The attention prologue in the QKV GEMM's epilogue: which own FP8 GEMMs write an AttentionPack's
 * outputs themselves (policy attentionPack "gemm"), so that the pack kernel, and the bf16 round trip
 * of Q, K and V through memory, go.
 *
 * A 128 x 128 output tile of the own GEMM (templates/gemm_fp8.cu.njk, ping-pong, one tile a consumer
 * warpgroup) is, where the projection's columns are Q's heads, then K's, then V's (128 values each)
 * and its rows are one stream's tokens, exactly one (role, head) over 128 tokens: a whole e4m3 scale
 * block of Q or K, or two 64-token blocks of V transposed. Everything the pack does to it is inside
 * the tile: the RMSNorm of each head's row, the RoPE of interleaved pairs, the block's amax and codes.
 * The epilogue rounds the scaled sums to bf16 first (the GEMM output the pack would have read) and
 * then runs the pack's arithmetic in its rounding order (templates/attention.cuh dca_rms_*,
 * dca_rope2), so the packed bytes are the pack kernel's.
 *
 * Taken, for a whole AttentionPack or not at all, where:
 *   - e4m3 Q/K (qk 'fp8', block scales), head dim 128, batch 1, as many K/V heads as Q heads, one
 *     sequence for queries and keys of a multiple of 128 tokens (no padded rows);
 *   - every stream (segment triple q, k, v) reads one GEMM output: an FP8 QLinear the own kernel runs
 *     with its scales in its epilogue (not deferred), Y bf16, its rows the stream's tokens (starting
 *     at a multiple of 128), Q at column 0, K at H·128, V at 2·H·128, each head's 128 values
 *     contiguous; RoPE interleaved (or none) from float tables, norm weights bf16 or float;
 *   - no other launch reads the GEMM's Q/K/V columns; columns after them (Flux.2's single blocks:
 *     the MLP's input) are a second launch of the own kernel, which must take them (N a multiple of 192).
 * The memory plan learns that the pack's outputs are written at the first such GEMM (earlyWrites).
 */
import type { Graph, Node } from '../ir/graph.ts';
import { consumers } from '../ir/graph.ts';
import { isLaunch, loadTimeNodes } from '../launches.ts';
import { type Deferred } from './dequant.ts';
import { packDescriptor, type Operand } from './attention.ts';
import { resolveView } from './views.ts';

/** What a QKV GEMM's pack epilogue writes (the GEMM's columns [0, cols) are Q, K, V: H heads each). */
export interface PackEpilogue {
  /** The AttentionPack node (its first output) whose outputs these are. */
  pack: string;
  /** Qp, Kp (e4m3), Vt (bf16), Qs, Ks: the pack's outputs. */
  outputs: string[];
  heads: number;
  /** Tokens of the packed sequence (a multiple of 128, no padding) and this stream's first. */
  seq: number;
  tokenStart: number;
  cols: number;
  eps: number;
  /** Per-head norm weights of Q and K (values, their C types), where the pack normalises. */
  qNorm?: { value: string; type: string };
  kNorm?: { value: string; type: string };
  /** The RoPE tables' windows (float32 roots, element offset, token stride; values contiguous). */
  rope?: { cos: { value: string; offset: number; stride: number }; sin: { value: string; offset: number; stride: number } };
}

export interface PackFusion {
  /** QLinear output -> the pack epilogue of its GEMM. */
  gemms: Map<string, PackEpilogue>;
  /** AttentionPack nodes (first output) no longer launched. */
  packs: Set<string>;
  /** Pack outputs -> the node index of the first GEMM that writes them (planMemory's earlyWrites). */
  earlyWrites: Map<string, number>;
}

const shapeOf = (graph: Graph, v: string) => (graph.types.get(v) as unknown as { shape: number[]; dtype: string });

/** Element span of a window's columns: offset within the row to the last column it touches (strides below a row). */
function columnSpan(dims: readonly { size: number; stride: number }[], n: number): number {
  return dims.filter((d) => d.stride < n && d.size > 1).reduce((s, d) => s + (d.size - 1) * d.stride, 0) + 1;
}

/**
 * The GEMMs that take the pack into their epilogue. `own`: the own kernel's options (undefined: it
 * does not run, so nothing fuses); `deferred`: deferDequant's answer.
 */
export function packFusion(graph: Graph, deferred: ReadonlyMap<string, Deferred>, own?: { minTiles: number }): PackFusion {
  const fusion: PackFusion = { gemms: new Map(), packs: new Set(), earlyWrites: new Map() };
  if (!own) return fusion;
  const users = consumers(graph);
  const loadTime = loadTimeNodes(graph);
  const index = new Map<string, number>();
  graph.nodes.forEach((n, i) => n.outputs.forEach((o) => index.set(o, i)));
  const launches = graph.nodes.map((n, i) => [n, i] as const).filter(([n, i]) => !loadTime.has(i) && isLaunch(graph, n, users));
  // Which launches read which roots, and where (views through which they read).
  const readsOf = new Map<string, { node: Node; value: string }[]>();
  for (const [node] of launches) {
    for (const v of node.inputs) {
      if (!v) continue;
      let root: string;
      try { root = resolveView(graph, v, 'pack epilogue').root; } catch { continue; }
      const list = readsOf.get(root) ?? [];
      list.push({ node, value: v });
      readsOf.set(root, list);
    }
  }
  for (const [node] of launches) {
    if (node.domain !== 'dc' || node.op !== 'AttentionPack') continue;
    const epilogues = packEpilogues(graph, node, deferred, own.minTiles, readsOf);
    if (!epilogues) continue;
    fusion.packs.add(node.outputs[0]);
    const first = Math.min(...epilogues.map(([root]) => index.get(root)!));
    for (const o of node.outputs) fusion.earlyWrites.set(o, first);
    for (const [root, e] of epilogues) fusion.gemms.set(root, e);
  }
  return fusion;
}

function packEpilogues(graph: Graph, node: Node, deferred: ReadonlyMap<string, Deferred>, minTiles: number, readsOf: ReadonlyMap<string, { node: Node; value: string }[]>): [string, PackEpilogue][] | undefined {
  const d = packDescriptor(graph, node, deferred);
  if (d.qk !== 'fp8' || d.kScale || d.headDim !== 128 || d.batch !== 1 || d.heads !== d.kvHeads || d.seqQ !== d.seqKv || d.seqQ % 128 !== 0) return undefined;
  if (d.segments.some((s) => s.cos) && d.rope !== 'interleaved') return undefined;
  const H = d.heads, cols = 3 * H * 128;
  const out: [string, PackEpilogue][] = [];
  for (let s = 0; s < d.segments.length; s += 3) {
    const [q, k, v] = d.segments.slice(s, s + 3);
    if (q?.role !== 'q' || k?.role !== 'k' || v?.role !== 'v') return undefined;
    const root = d.inputs[q.x.param].value;
    if ([k, v].some((x) => d.inputs[x.x.param].value !== root) || [q, k, v].some((x) => x.dequant || x.start !== q.start || x.length !== q.length)) return undefined;
    if (q.start % 128 !== 0 || deferred.has(root)) return undefined;
    const gemm = graph.nodes.find((n) => n.outputs[0] === root);
    if (!gemm || gemm.domain !== 'dc' || gemm.op !== 'QLinear' || gemm.attrs.format !== 'fp8') return undefined;
    const x = shapeOf(graph, gemm.inputs[0]), y = shapeOf(graph, root);
    const m = x.shape.slice(0, -1).reduce((a, b) => a * b, 1), kDim = x.shape.at(-1)!, n = y.shape.at(-1)!;
    if (y.dtype !== 'bfloat16' || m !== q.length || m % 128 !== 0 || kDim % 128 !== 0 || n < cols) return undefined;
    // Own-kernel shapes: the Q/K/V part in 128-wide tiles; the rest (if any) as the own kernel takes it.
    if ((n - cols) % 192 !== 0 || (n > cols && (m / 128) * ((n - cols) / 192) < minTiles)) return undefined;
    if ((m / 128) * (cols / 128) < minTiles) return undefined;
    const [, xs, , ws, bias] = gemm.inputs;
    if (shapeOf(graph, xs).dtype !== 'float32' || shapeOf(graph, ws).dtype !== 'float32' || (bias && !['float32', 'bfloat16'].includes(shapeOf(graph, bias).dtype))) return undefined;
    // Q, K, V at columns 0, H·128, 2·H·128 of every row, heads 128 apart, values contiguous.
    const layoutOk = [q, k, v].every((seg, r) => seg.x.offset === r * H * 128 && seg.x.strides[1] === n && seg.x.strides[2] === 128 && seg.x.strides[3] === 1);
    if (!layoutOk) return undefined;
    // No other launch reads the Q/K/V columns (they are not written any more).
    for (const r of readsOf.get(root) ?? []) {
      if (r.node === node) continue;
      const view = resolveView(graph, r.value, 'pack epilogue');
      if (view.offset % n < cols || (view.offset % n) + columnSpan(view.dims, n) > n) return undefined;
    }
    const norm = (o?: Operand) => (o && o.strides[0] === 1 && o.offset === 0 && ['__nv_bfloat16', 'float'].includes(d.inputs[o.param].type) ? { value: d.inputs[o.param].value, type: d.inputs[o.param].type } : undefined);
    if ((q.norm && !norm(q.norm)) || (k.norm && !norm(k.norm)) || !!q.cos !== !!k.cos || !!q.cos !== !!q.sin) return undefined;
    const table = (o: Operand) => (o.strides[1] === 1 && d.inputs[o.param].type === 'float' ? { value: d.inputs[o.param].value, offset: o.offset, stride: o.strides[0] } : undefined);
    let rope: PackEpilogue['rope'];
    if (q.cos) {
      const [cos, sin] = [table(q.cos), table(q.sin!)];
      if (!cos || !sin || JSON.stringify(q.cos) !== JSON.stringify(k.cos) || JSON.stringify(q.sin) !== JSON.stringify(k.sin)) return undefined;
      rope = { cos, sin };
    }
    // What the epilogue reads besides the GEMM's operands must be ready when the GEMM runs, not just by the pack.
    const at = graph.nodes.indexOf(gemm);
    const producedAfter = (v?: string) => v !== undefined && graph.nodes.findIndex((n) => n.outputs.includes(v)) > at;
    if ([q.norm && norm(q.norm)?.value, k.norm && norm(k.norm)?.value, rope?.cos.value, rope?.sin.value].some((v) => producedAfter(v || undefined))) return undefined;
    out.push([root, {
      pack: node.outputs[0], outputs: node.outputs.slice(), heads: H, seq: d.seqQ, tokenStart: q.start, cols, eps: d.eps,
      ...(q.norm ? { qNorm: norm(q.norm) } : {}), ...(k.norm ? { kNorm: norm(k.norm) } : {}), ...(rope ? { rope } : {}),
    }]);
  }
  return out.length ? out : undefined;
}
