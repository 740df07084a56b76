/**
 * fuse-vquant: the 8-bit attention's V quantization moves into the V projection's GEMM and the pack.
 *
 *   y_i = QLinear(x_i, ..)                                   the GEMMs whose columns hold V's segments
 *   Qp, Kp, Vt, Qs, Ks = AttentionPack('', segments..){qk}
 *   Vt8, Vs = AttentionQuantizeV(Vt[, mask]){seqKv, pv}      pv = qk: 'fp8' (e4m3 V) or 'int8' (s8 V, the integer P·V)
 *     =>  y_i, a_i = QLinear(x_i, .., [mask]){amax: [start, H·D][, maskKeys, seqKv, maskOffset]}
 *         Qp, Kp, Vt8, Qs, Ks, Vs = AttentionPack(mask or '', segments.., a_0, a_1, ..){vquant: 1[, pv: 'int8']}
 *
 * Why: V's e4m3 (s8) scales are per (batch, kv head, channel) over every key, so the pack could not code
 * V as it wrote it: it wrote V in bf16 and a second launch read it back, reduced the channels' amax
 * and wrote the codes (Flux.2: 48 µs a node, 56 nodes, on an H100 80GB HBM3; bench/RESULTS.md "Session 18"/"Session 19").
 * The GEMM that makes V holds every value of it in its epilogue: it reduces each column's amax there
 * (per batch, the rows the key mask drops left out) and the pack, running after it, takes the scales
 * from those amaxes and writes the codes directly. The meaning is unchanged: the amax is of the same
 * bf16 values over the same keys, so Vt8 and Vs are AttentionQuantizeV's, byte for byte.
 *
 * Where: `options` (compile.ts horizontalFor: the own FP8 GEMM with its scales in its epilogue), after
 * fuse-horizontal, so that the GEMMs it fuses are exactly those the own kernel runs: an FP8 QLinear it takes
 * alone, or one of a dc.GroupedGemm's pair. Each segment's V must be a window of such a QLinear's y
 * [B, S, N] (through views: Split, Reshape) whose columns are V's heads and channels in order (whole
 * 64-column chunks; rows a batch a multiple of 16), each GEMM V's for one attention. The mask goes only to
 * the GEMMs whose keys it may drop (codegen/attention.ts maskedKeys: Qwen-Image's text stream, not its 4096
 * image keys).
 */
import { maskedKeys } from '../compiler/codegen/attention.ts';
import { segmentNodes } from '../compiler/codegen/elementwise.ts';
import { ownGemmTakes } from '../compiler/codegen/gemm.ts';
import { resolveView } from '../compiler/codegen/views.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { consumers, producers } from '../compiler/ir/graph.ts';
import { attentionInput } from '../compiler/ops/fused.ts';
import { vquantPv } from '../compiler/ops/packed-attention.ts';
import { gluWindow } from '../compiler/ops/quant.ts';
import { gemmOf } from './fuse-gemm-residual.ts';
import { toposort } from './fuse-elementwise.ts';
import type { Pass } from './pass.ts';

const RULE = 'V projection amax + AttentionPack + AttentionQuantizeV => QLinear amax, AttentionPack vquant';

const typeOf = (graph: Graph, v: string) => graph.types.get(v) as { dtype?: string; shape?: readonly number[] } | undefined;

/** A plain FP8 QLinear (fast accumulation, no epilogue, no amax yet, bf16 y [B, S, N]); a GLU one too (Flux.2's single
 * blocks: V before the window, which vSegment requires). */
const plainQLinear = (graph: Graph, q: Node | undefined): q is Node =>
  !!q && q.domain === 'dc' && q.op === 'QLinear' && q.attrs.format === 'fp8' && q.attrs.accumulate === 'sm90' && !q.attrs.promote
  && !q.attrs.epilogue && !q.attrs.amax && typeOf(graph, q.outputs[0])?.dtype === 'bfloat16' && typeOf(graph, q.outputs[0])?.shape?.length === 3;

/** A GEMM the own kernel runs: a launch node (a QLinear, or a GroupedGemm) and, for a group, which of its GEMMs. */
interface Gemm { at: number; member?: number; q: Node }

/** The own-kernel GEMM whose output 0 is `y` (outer names), or undefined. */
function gemmMaking(graph: Graph, y: string, made: Map<string, number>, minTiles: number): Gemm | undefined {
  const at = made.get(y);
  if (at === undefined) return undefined;
  const node = graph.nodes[at];
  if (node.domain === 'dc' && node.op === 'GroupedGemm') {
    const members = segmentNodes(node), member = members.findIndex((q) => q.outputs[0] === y);
    return plainQLinear(graph, members[member]) ? { at, member, q: members[member] } : undefined;
  }
  const g = plainQLinear(graph, node) && node.outputs[0] === y ? gemmOf(graph, node) : undefined;
  return g && ownGemmTakes(g.m, g.n, g.k, 'bfloat16', g.scaled, minTiles) ? { at, q: node } : undefined;
}

interface Segment extends Gemm { start: number; count: number; keys: number }

/** Segment s's V as columns of one own-kernel GEMM's y: the GEMM, the first column, H·D, and its first key. */
function vSegment(graph: Graph, pack: Node, s: number, key0: number, made: Map<string, number>, minTiles: number): Segment | undefined {
  const v = pack.inputs[attentionInput(s, 'v')], shape = typeOf(graph, v)?.shape;
  if (!v || !shape || shape.length !== 4) return undefined;
  let view;
  try {
    view = resolveView(graph, v, `V '${v}'`);
  } catch {
    return undefined;
  }
  const gemm = gemmMaking(graph, view.root, made, minTiles);
  if (!gemm) return undefined;
  const [b, s_, n] = typeOf(graph, view.root)!.shape!;
  const bshd = (pack.attrs.layouts as string[])[2] === 'bshd';
  const [vb, vs, vh, vd] = bshd ? shape : [shape[0], shape[2], shape[1], shape[3]];
  // V's (b, s, h, d) over y's dims: the views' strides in V's own axis order.
  const order = bshd ? [0, 1, 2, 3] : [0, 2, 1, 3];
  const strides = order.map((a) => (view.dims[a]?.size === 1 ? undefined : view.dims[a]?.stride));
  const want = [s_ * n, n, vd, 1];
  // The epilogue reduces whole 64-column chunks of a batch's rows (16-row groups).
  if (view.dims.length !== 4 || vb !== b || vs !== s_ || s_ % 16 || view.offset % 64 || (vh * vd) % 64 || view.offset + vh * vd > n || strides.some((st, i) => st !== undefined && st !== want[i])) return undefined;
  // A GLU GEMM's amax columns come before its window (compiler/codegen/gemm.ts).
  const glu = gluWindow(gemm.q);
  if (glu && view.offset + vh * vd > glu.lo) return undefined;
  return { ...gemm, start: view.offset, count: vh * vd, keys: key0 };
}

/** A launch node with the QLinear `q` (outer names) given its amax output and mask: itself, or its GroupedGemm with the member replaced. */
function withAmax(node: Node, seg: Segment, q: Node): Node {
  if (seg.member === undefined) return q;
  const body = node.body!;
  // Outer names for the new values, the same as formal ones in the body.
  const added = q.inputs.filter((x, i) => i >= 5 && x && !node.inputs.includes(x));
  const formal = new Map([...body.inputs.map((f, i) => [node.inputs[i], f] as const), ...body.outputs.map((f, i) => [node.outputs[i], f] as const)]);
  const inner: Node = { ...q, inputs: q.inputs.map((x) => (x ? formal.get(x) ?? x : x)), outputs: q.outputs.map((x) => formal.get(x) ?? x) };
  const nodes = body.nodes.map((b, i) => (i === seg.member ? inner : b));
  return {
    ...node, inputs: [...node.inputs, ...added], outputs: [...node.outputs, q.outputs[1]],
    body: { inputs: [...body.inputs, ...added], outputs: [...body.outputs, q.outputs[1]], nodes },
  };
}

export const makeFuseVQuant = (options: { minTiles: number }): Pass => ({
  name: 'fuse-vquant',
  rules: [RULE],
  run(graph, ctx) {
    const made = producers(graph), users = consumers(graph), outputs = new Set(graph.outputs);
    const replaced = new Map<number, Node | null>(), taken = new Set<string>();
    graph.nodes.forEach((vq, i) => {
      if (vq.domain !== 'dc' || vq.op !== 'AttentionQuantizeV') return;
      const packAt = made.get(vq.inputs[0]);
      const pack = packAt === undefined ? undefined : graph.nodes[packAt];
      const pv = vquantPv(vq, `AttentionQuantizeV -> ${vq.outputs[0]}`);
      if (!pack || pack.op !== 'AttentionPack' || pack.attrs.qk !== pv || pack.attrs.vquant || pack.outputs[2] !== vq.inputs[0] || users.get(vq.inputs[0])?.length !== 1 || outputs.has(vq.inputs[0]) || replaced.has(packAt!)) return;
      const segments = pack.attrs.segments as number;
      const list: Segment[] = [];
      let key0 = 0;
      for (let s = 0; s < segments; s++) {
        const seg = vSegment(graph, pack, s, key0, made, options.minTiles);
        if (!seg || taken.has(seg.q.outputs[0]) || list.some((x) => x.q.outputs[0] === seg.q.outputs[0])) return;
        list.push(seg);
        key0 += typeOf(graph, seg.q.outputs[0])!.shape![1];
      }
      const mask = vq.inputs[1] ?? '';
      const seqKv = key0, keys = mask ? Math.min(seqKv, maskedKeys(graph, mask, typeOf(graph, mask)?.dtype === 'bool')) : 0;
      const amax = list.map((seg) => {
        const q = seg.q, y = q.outputs[0], a = `${y}/vamax`;
        const masked = keys > seg.keys;  // the mask may drop some of this GEMM's rows' keys
        const fused: Node = {
          ...q,
          inputs: masked ? [...q.inputs.slice(0, 4), q.inputs[4] ?? '', '', '', mask] : q.inputs,
          outputs: [y, a],
          attrs: { ...q.attrs, amax: [seg.start, seg.count], ...(masked ? { maskKeys: keys, seqKv, maskOffset: seg.keys } : {}) },
        };
        // A group's second member builds on the first's rewrite.
        replaced.set(seg.at, withAmax((replaced.get(seg.at) as Node | undefined) ?? graph.nodes[seg.at], seg, fused));
        taken.add(y);
        return a;
      });
      replaced.set(packAt!, {
        ...pack,
        inputs: [mask, ...pack.inputs.slice(1), ...amax],
        outputs: [pack.outputs[0], pack.outputs[1], vq.outputs[0], pack.outputs[3], pack.outputs[4], vq.outputs[1]],
        attrs: { ...pack.attrs, vquant: 1, ...(pv === 'int8' ? { pv } : {}) },
      });
      replaced.set(i, null);
    });
    const fused = [...replaced.values()].filter((n) => n === null).length;
    if (!fused) return graph;
    ctx.count(RULE, fused);
    const nodes = graph.nodes.flatMap((n, i) => (replaced.has(i) ? (replaced.get(i) ? [replaced.get(i)!] : []) : [n]));
    // The mask now feeds the GEMM, which may come before the mask's last node in graph order.
    return { ...graph, nodes: toposort(nodes, new Set([...graph.inputs, ...graph.constants.keys()])) };
  },
});
