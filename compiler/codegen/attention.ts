/**
 * Attention kernels: dc.AttentionPack and dc.PackedAttention nodes (passes/lower-attention.ts)
 * become typed descriptors, rendered by templates/attention_pack.cu.njk and attention.cu.njk with
 * templates/attention.cuh. Everything a launch needs to know (shapes, the strided windows of the
 * inputs, the mask's broadcast strides, the softmax scale) is baked into the source; a launch's
 * arguments are device pointers only: the pack's input roots (attention-views.ts) and outputs, then
 * for the attention the mask root, the packed operands and the output, in parameter order.
 *
 * One source serves both targets: the attention kernel takes the wgmma path where the compiler
 * defines the sm_90a features, ldmatrix + mma.sync elsewhere (sm_100a), with the same geometry.
 * qk='int8' (s8 Q/K codes, scales per Q row and K block) shares qk='fp8''s layouts: the templates'
 * `fp8` flag means 8-bit Q/K rows, `int8` picks the s8 arithmetic.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { fail } from '../errors.ts';
import type { DType } from '../ir/dtype.ts';
import { type Graph, type Node, producers } from '../ir/graph.ts';
import { inlineConstantAll } from '../onnx/constants.ts';
import { U8_P_LOG2, attentionInput, codedPV, codedQK, pvRecipe, pvTile, qkRecipe } from '../ops/fused.ts';
import { PACK_ROWS, packedHeadDim, padRows, vquantPv } from '../ops/packed-attention.ts';
import { ROOT } from '../paths.ts';
import { type StridedView, resolveView } from './views.ts';
import type { Deferred } from './dequant.ts';
import type { RenderedKernel } from './render.ts';
import { H100_SMS } from './device.ts';
import { jsonHash16 } from '../hash.ts';

const TEMPLATES = join(ROOT, 'templates');
const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(TEMPLATES), { autoescape: false, throwOnUndefined: true });
const text = (file: string) => readFileSync(join(TEMPLATES, file), 'utf8');

const C_TYPE: Partial<Record<DType, string>> = { float32: 'float', bfloat16: '__nv_bfloat16', float16: '__half', bool: 'bool' };

/** A strided input: kernel parameter `param`, element offset, strides of the logical axes. */
export interface Operand { param: number; offset: number; strides: number[] }
export interface PackSegment {
  role: 'q' | 'k' | 'v';
  start: number;
  length: number;
  /** strides over (b, s, h, d) */
  x: Operand;
  norm?: Operand;
  /** strides over (s, d) */
  cos?: Operand;
  sin?: Operand;
  /**
   * x is a deferred GEMM's raw output (dequant.ts): the value at (b, tl, head, d) is raw · xs[tok]
   * · ws[f] (+ bias[f]) with tok = tok0 + b·tokB + tl·tokS and f = f0 + head·sh + d (parameters
   * xs, ws, bias).
   */
  dequant?: { xs: number; ws: number; bias?: number; tok0: number; tokB: number; tokS: number; f0: number; sh: number };
}

export interface PackDescriptor {
  kind: 'attention-pack';
  batch: number; heads: number; kvHeads: number; seqQ: number; seqKv: number; headDim: number; dp: number;
  qk: 'bf16' | 'fp8' | 'int8';
  eps: number;
  rope: 'interleaved' | 'half';
  /** Kernel inputs in parameter order: a root value and its C element type. */
  inputs: { value: string; type: string }[];
  segments: PackSegment[];
  outputs: string[];
  /**
   * Threads per role-head (256 or 512) and role-heads per CTA (`group`, dividing heads and kvHeads:
   * the RoPE rows they share come from L1); CTAs per SM asked of ptxas; row passes unrolled (V, and
   * bf16 Q/K: the e4m3 rows are all kept in registers, every pass unrolled).
   */
  threads: number;
  group: number;
  /** Which of token block and role-head group runs fastest over the CTAs. */
  order: 'tokens' | 'heads';
  /**
   * The block's Q/K/V rows copied to shared memory first (cp.async, 16 bytes a lane, every row of
   * the block in flight at once), read from there: where every segment's rows are bf16 in runs of 8.
   */
  stage: boolean;
  /** CTAs of a persistent launch (each takes every persist-th item, the next item's rows copied in
   * while one is computed; needs `stage`), or 0: a CTA per item. */
  persist: number;
  minBlocks: number;
  passUnroll: number;
  /**
   * e4m3 (and s8) packs with staged rows: the block's values parked as bf16 in shared memory until its
   * amax is known, each in place of the staged chunk its lane read, and V's rows there too (no tile of
   * their own): fewer registers and half the shared memory, more CTAs a SM.
   */
  park: boolean;
  /** Deferred GEMM outputs (roots) read in a way the pack cannot dequantize. */
  undeferrable?: string[];
  /**
   * AttentionPack vquant=1 (passes/fuse-vquant.ts): V written as Vt8 with Vs, the channel amax from
   * the parameters `amax` (one a segment, fp32 [B, Hkv·D]), coded as `pv` (e4m3, or s8 with qk='int8');
   * `mask`, the attention's key mask (a window over (b, h, q, k), h and q broadcast) whose dropped keys V
   * holds as 0.
   */
  vquant?: { amax: number[]; pv: 'fp8' | 'int8'; mask?: { param: number; window: MaskWindow } };
}

export interface AttentionDescriptor {
  kind: 'attention';
  batch: number; heads: number; kvHeads: number; seqQ: number; seqKv: number; headDim: number; dp: number;
  qk: 'bf16' | 'fp8' | 'int8';
  scale: number;
  causal: boolean;
  outLayout: 'bshd' | 'bhsd';
  outType: string;
  /** The mask's root and its window, strides over (b, h, q, k) (0 where broadcast); `keys`: the
   * leading keys it may mask (maskedKeys), every later key always kept. */
  mask?: { value: string; type: string; bool: boolean; offset: number; strides: number[]; keys: number };
  /** Packed operands (Qp, Kp, Vt[, Qs, Ks]) and the output. */
  inputs: string[];
  output: string;
  /**
   * Consumer schedule on the wgmma path: 'serial' (each warpgroup: scores, softmax, P·V, each
   * awaited), 'pingpong' (the two warpgroups alternate on the tensor cores, one's softmax under
   * the other's GEMMs, and its exponentials under its own P·V) or 'pingpong-wait' (the same, the
   * softmax after its own P·V). The mma.sync path is always serial.
   */
  schedule: 'serial' | 'pingpong' | 'pingpong-wait';
  /** Shared-memory stages of K and of V (2 or 3; 3 only where it fits the 227 KB). */
  stages: number;
  /**
   * P·V precision: 'bf16', 'fp8' (with qk='fp8'; inputs Vt8 e4m3 and Vs from AttentionQuantizeV or
   * the pack's vquant mode, after Qs, Ks): P rounded to e4m3 in registers, or 'int8' (with qk='int8';
   * Vt8 s8 from AttentionQuantizeV): P as u8 codes, O summed exactly in s32 (direct accumulation only).
   * `pvAccumulate` (fp8 only): 'split', each tile's P·V in its own accumulator added to O in fp32, or 'direct', into O.
   */
  pv?: 'bf16' | 'fp8' | 'int8';
  pvAccumulate?: 'split' | 'direct';
  /** Skip O's rescaling in a warp whose rows all kept their running max (same values). */
  lazyRescale?: boolean;
  /**
   * bf16 P·V only: a row keeps its running max until a tile's exceeds it by more than this (log2
   * units; P then reaches 2^slack, exact in fp32 and well inside bf16's range), so with lazyRescale
   * O is rescaled in the few tiles that move a max instead of every tile (FA4's conditional
   * rescaling). The softmax's value is unchanged: P and l scale together by a power of two.
   */
  rescaleSlack?: number;
  /**
   * Keys per tile (default 128): 192 halves the per-key cost of the max, shuffles and rescaling
   * (no causality, no per-query mask, a padded kv length that 192 divides). With 8-bit P·V (pv 'fp8' or 'int8') the
   * tile is the semantics' (pvTile: P is rounded per tile).
   */
  bn?: number;
  /**
   * Exponentials: 'f32', one MUFU instruction per key, or 'poly': every `polyEvery`th column group
   * by an FMA polynomial instead (FA4's split of the load), the rest 'f32'. (ex2.approx.bf16x2 is no
   * third way: on the H100 it assembles to two MUFU.EX2.BF16, one per element.)
   */
  exp?: 'f32' | 'poly';
  polyEvery?: number;
  /** Row sums (bf16 P·V): 'alu', fp32 adds and quad shuffles, or 'mma', ones rows in V's tiles (P·V sums P). */
  lsum?: 'alu' | 'mma';
  /**
   * Register arrays for P (FP8 P·V in the full ping-pong, no causality): 1, the next tile's P packed
   * over the one the P·V in flight reads (ptxas then waits for that MMA before the softmax), or 2,
   * alternating by tile parity (the loop unrolled by two).
   */
  pBuffers?: 1 | 2;
  /**
   * The last wave's units split over key ranges (not causal): where the grid's (batch, head, query
   * tile) units leave a partial last wave on the H100's SMs (Flux.2: 1728 = 13 x 132 + 12), each of
   * those units runs as `tailPieces` CTAs of kvTiles / tailPieces key tiles, and the unit's last piece
   * to finish merges their partial O, m and l. Absent: lastWavePieces' choice (the render's, from the
   * final shape and tiles); 0: one CTA a unit; N: N pieces, any count that splits the tiles as the loop
   * needs (that they fit the idle SMs is lastWavePieces' rule, not a condition).
   */
  tailPieces?: number;
  /**
   * FP8 P·V in the full ping-pong with two P arrays: the last key tile computed over only the keys it
   * holds (rounded up to 32: Qwen-Image's 4128 keys leave 96 of the 22nd 192-key tile, whose other 96
   * are padding) with narrower MMAs, softmax and P; the same values as the whole tile, whose padded
   * keys add exact zeros (lastTileKeys). Absent: wherever the kernel can; false: never; true: required.
   */
  narrowLastTile?: boolean;
  /**
   * Full ping-pong: where a consumer warpgroup hands the tensor cores to the other one in its turn: 'issue' (where
   * absent), right after issuing its Q·Kᵀ and P·V; 'scores', once the tile's scores are in; 'max', once its row
   * maxima are known; 'mid', halfway through its exponentials; 'exp', after them. A later hand-over staggers the two
   * warpgroups' softmaxes (the other one's scores arrive later); the values are the same.
   */
  handOver?: 'issue' | 'scores' | 'max' | 'mid' | 'exp';
}

/** dc.AttentionQuantizeV: the pack's Vt (bf16) to Vt8 (e4m3, or s8 with pv='int8') and Vs (a scale per head and channel). */
export interface VQuantDescriptor {
  kind: 'attention-vquant';
  /** batch x kv heads, kv heads, padded kv length (a multiple of 128), padded head dim. */
  heads: number; kvHeads: number; seqKvPad: number; dp: number;
  /** V's codes: e4m3 (pv='fp8') or s8 (pv='int8'). */
  pv: 'fp8' | 'int8';
  input: string;
  /** A key mask (the attention's; strides over (b, h, q, k) with h and q broadcast): its dropped keys count as 0. */
  mask?: MaskWindow;
  outputs: string[];
}

export interface AttentionKernel extends RenderedKernel {
  /** Values passed as the launch's arguments, in the kernel's parameter order. */
  args: string[];
}

const typeOf = (graph: Graph, v: string) => graph.types.get(v) as unknown as { dtype: DType; shape: number[] };

function cType(dtype: DType, where: string): string {
  return C_TYPE[dtype] ?? fail(where, 'an input of float32, bfloat16, float16 or bool', dtype);
}

// ---- descriptors ------------------------------------------------------------------------------------

/**
 * `deferred`: GEMM outputs written raw (dequant.ts); a Q/K/V segment reading one gets the
 * dequantization where each head's D values lie in one row of it, else it is listed in `undeferrable`.
 */
export function packDescriptor(graph: Graph, node: Node, deferred?: ReadonlyMap<string, Deferred>): PackDescriptor {
  const where = `AttentionPack kernel -> ${node.outputs[0]}`;
  const layouts = node.attrs.layouts as string[];
  const segments = node.attrs.segments as number;
  const inputs: PackDescriptor['inputs'] = [];
  const undeferrable: string[] = [];
  const paramOf = (value: string) => {
    let i = inputs.findIndex((x) => x.value === value);
    if (i < 0) i = inputs.push({ value, type: cType(typeOf(graph, value).dtype, where) }) - 1;
    return i;
  };
  const param = (view: StridedView) => paramOf(view.root);
  const operand = (value: string, order: number[]): Operand => {
    const view = resolveView(graph, value, where);
    return { param: param(view), offset: view.offset, strides: order.map((a) => (view.dims[a].size === 1 ? 0 : view.dims[a].stride)) };
  };
  const qShape = typeOf(graph, node.outputs[0]).shape;
  const kShape = typeOf(graph, node.outputs[1]).shape;
  const list: PackSegment[] = [];
  const starts = { q: 0, k: 0, v: 0 };
  let batch = 0, heads = 0, kvHeads = 0, headDim = 0;
  for (let s = 0; s < segments; s++) {
    (['q', 'k', 'v'] as const).forEach((role, r) => {
      const x = node.inputs[attentionInput(s, role)];
      const shape = typeOf(graph, x).shape;
      const bshd = layouts[r] === 'bshd';
      const length = bshd ? shape[1] : shape[2];
      [batch, headDim] = [shape[0], shape[3]];
      if (role === 'q') heads = bshd ? shape[2] : shape[1];
      if (role === 'k') kvHeads = bshd ? shape[2] : shape[1];
      const seg: PackSegment = { role, start: starts[role], length, x: operand(x, bshd ? [0, 1, 2, 3] : [0, 2, 1, 3]) };
      const root = resolveView(graph, x, where).root, gemm = deferred?.get(root);
      if (gemm) {
        const [sb, ss, sh, sd] = seg.x.strides, n = gemm.n, f0 = seg.x.offset % n;
        const segHeads = bshd ? shape[2] : shape[1];
        if (sd === 1 && sb % n === 0 && ss % n === 0 && sh >= 0 && f0 + (segHeads - 1) * sh + shape[3] <= n) {
          seg.dequant = { xs: paramOf(gemm.xs), ws: paramOf(gemm.ws), ...(gemm.bias ? { bias: paramOf(gemm.bias) } : {}), tok0: Math.floor(seg.x.offset / n), tokB: sb / n, tokS: ss / n, f0, sh };
        } else undeferrable.push(root);
      }
      if (role !== 'v') {
        const norm = node.inputs[attentionInput(s, role === 'q' ? 'qNorm' : 'kNorm')];
        const cos = node.inputs[attentionInput(s, 'cos')], sin = node.inputs[attentionInput(s, 'sin')];
        if (norm) seg.norm = operand(norm, [0]);
        if (cos && sin) {
          seg.cos = operand(cos, [0, 1]);
          seg.sin = operand(sin, [0, 1]);
        }
      }
      starts[role] += length;
      list.push(seg);
    });
  }
  const qk = qkRecipe(node, where);  // checked: a known qk, no kScale (K's scales are per 128-token block)
  let vquant: PackDescriptor['vquant'];
  if (node.attrs.vquant) {
    const amax = Array.from({ length: segments }, (_, s) => paramOf(node.inputs[1 + 7 * segments + s]));
    const window = node.inputs[0] ? keyMaskWindow(graph, node.inputs[0], starts.k, where) : undefined;
    vquant = { amax, pv: vquantPv(node, where), ...(window && window.keys > 0 ? { mask: { param: paramOf(window.value), window } } : {}) };
  }
  const stage = codedQK(qk) && list.every((s) => stageable(inputs[s.x.param].type, s.x));
  const seqQ = starts.q, seqKv = starts.k;
  if (codedQK(qk) ? qShape[2] !== padRows(seqQ) || kShape[2] !== padRows(seqKv) : qShape[3] !== padRows(seqQ)) {
    fail(where, 'packed outputs matching the segments', `[${qShape}] for ${seqQ} tokens`);
  }
  return {
    kind: 'attention-pack', batch, heads, kvHeads, seqQ, seqKv, headDim, dp: packedHeadDim(headDim, qk), qk,
    eps: (node.attrs.normEps as number | undefined) ?? 1e-6,
    rope: ((node.attrs.ropeStyle as string | undefined) ?? 'interleaved') === 'half' ? 'half' : 'interleaved',
    inputs, segments: list, outputs: node.outputs.slice(),
    // 64 registers (4 CTAs of 256 threads) hold the bf16 pack; dequantizing a deferred GEMM's output needs more (3 CTAs: 85).
    // The e4m3 pack with staged rows parks the block's values in shared memory as bf16, in place of its
    // staged rows (32 KB; the models' packs, with V coded in the pack, 80 registers: 3 CTAs a SM; bounds
    // of 4 spill); unstaged, it keeps them in registers (2 CTAs: 128). Measured on an H100 (bench/results/
    // attention-pack-2026-11-26.md, -26b.md; bench/RESULTS.md "Session 23", on the bf16-P·V recipe's packs,
    // and "Session 24"): head-major CTAs, the e4m3 pack's rows staged and its values parked are faster (as
    // bf16 6-7% faster alone than as floats); staged bf16 packs, 2 role-heads or 512 threads a CTA are
    // slower; persistent e4m3 packs about the same, with the RoPE tables staged once a run of role-heads
    // (1 CTA a SM) slower. The s8 pack (qk='int8') takes the e4m3 pack's settings.
    threads: 256, group: 1, order: 'heads', stage, persist: 0, park: stage, minBlocks: stage ? 3 : codedQK(qk) ? 2 : list.some((s) => s.dequant) ? 3 : 4, passUnroll: 2,
    ...(undeferrable.length ? { undeferrable } : {}), ...(vquant ? { vquant } : {}),
  };
}

/** Whether a segment's x can be copied 16 bytes (8 bf16 values) at a time. */
const stageable = (type: string, x: Operand) => type === '__nv_bfloat16' && x.strides[3] === 1 && [x.offset, ...x.strides.slice(0, 3)].every((v) => v % 8 === 0);

/** Ops a mask's key axis passes through unchanged (or is broadcast by). */
const MASK_VIEWS = new Set(['Unsqueeze', 'Reshape', 'Identity', 'Squeeze', 'Cast', 'Expand']);

/**
 * How many leading keys (last axis) an attention mask may mask; every key after them is kept
 * whatever the inputs, as the mask's structure shows. An additive mask Where(keep, 0, -big) keeps
 * where `keep` is true; a bool mask keeps where true. `keep` is followed through views, casts and
 * broadcasts to a last-axis Concat whose later parts are constants of true (Qwen-Image: the
 * text-padding mask then 4096 image keys of ones gives 256 of 4352). Anything else: all keys.
 */
export function maskedKeys(graph: Graph, mask: string, bool: boolean): number {
  const width = (v: string) => typeOf(graph, v).shape.at(-1) ?? 1;
  const index = producers(graph);
  const producer = (v: string) => { const i = index.get(v); return i === undefined ? undefined : graph.nodes[i]; };
  const keepExtent = (v: string, depth: number): number => {
    const w = width(v);
    if (inlineConstantAll(graph, v, (x) => x !== 0)) return 0;
    const p = producer(v);
    if (!p || p.domain !== '' || depth > 8) return w;
    if (MASK_VIEWS.has(p.op)) {
      const inner = keepExtent(p.inputs[0], depth + 1);
      return width(p.inputs[0]) === w ? inner : inner === 0 ? 0 : w;
    }
    if (p.op === 'Concat') {
      const rank = typeOf(graph, v).shape.length, axis = (p.attrs.axis as number | undefined) ?? 0;
      if (axis !== -1 && axis !== rank - 1) return w;
      let start = 0, extent = 0;
      for (const x of p.inputs) {
        const e = keepExtent(x, depth + 1);
        if (e > 0) extent = start + e;
        start += width(x);
      }
      return extent;
    }
    return w;
  };
  const additiveExtent = (v: string, depth: number): number => {
    const p = producer(v);
    if (p?.op === 'Where' && p.domain === '' && inlineConstantAll(graph, p.inputs[1], (x) => x === 0)) return keepExtent(p.inputs[0], 0);
    if (p && p.domain === '' && depth < 8 && MASK_VIEWS.has(p.op) && width(p.inputs[0]) === width(v)) return additiveExtent(p.inputs[0], depth + 1);
    return width(v);
  };
  return bool ? keepExtent(mask, 0) : additiveExtent(mask, 0);
}

type MaskWindow = NonNullable<AttentionDescriptor['mask']>;

/** An attention mask's root and window (strides over (b, h, q, k), 0 where broadcast) and the keys it may mask. */
function maskWindow(graph: Graph, value: string, where: string): MaskWindow {
  const view = resolveView(graph, value, where);
  const dtype = typeOf(graph, value).dtype;
  const pad = 4 - view.dims.length;
  const strides = [0, 1, 2, 3].map((a) => {
    const d = view.dims[a - pad];
    return !d || d.size === 1 ? 0 : d.stride;
  });
  return { value: view.root, type: cType(typeOf(graph, view.root).dtype, where), bool: dtype === 'bool', offset: view.offset, strides, keys: maskedKeys(graph, value, dtype === 'bool') };
}

/**
 * A key mask (broadcast over heads and queries) as the V quantization reads it, by the pack's vquant mode,
 * AttentionQuantizeV or the V projection's amax epilogue: its window, the keys it may drop at most
 * `seqKv`; or an error naming `where`.
 */
export function keyMaskWindow(graph: Graph, value: string, seqKv: number, where: string): MaskWindow {
  const w = maskWindow(graph, value, where);
  if (w.strides[1] || w.strides[2]) fail(where, 'a key mask (broadcast over heads and queries)', `mask strides [${w.strides}] over (b, h, q, k)`);
  return { ...w, keys: Math.min(w.keys, seqKv) };
}

export function attentionDescriptor(graph: Graph, node: Node): AttentionDescriptor {
  const where = `PackedAttention kernel -> ${node.outputs[0]}`;
  const q = typeOf(graph, node.inputs[1]).shape, k = typeOf(graph, node.inputs[2]).shape;
  const qk = qkRecipe(node, where);  // checked: a known qk, no kScale (K's scales are per 128-token block)
  const [batch, heads, kvHeads] = [q[0], q[1], k[1]];
  const seqQ = node.attrs.seqQ as number, seqKv = node.attrs.seqKv as number, headDim = node.attrs.headDim as number;
  const mask = node.inputs[0] ? maskWindow(graph, node.inputs[0], where) : undefined;
  const pv = pvRecipe(node, where);  // checked: 8-bit P·V with its Q·Kᵀ
  const d: AttentionDescriptor = {
    kind: 'attention', batch, heads, kvHeads, seqQ, seqKv, headDim, dp: packedHeadDim(headDim, qk), qk,
    scale: node.attrs.scale as number, causal: node.attrs.causal === 1,
    outLayout: node.attrs.outLayout === 'bshd' ? 'bshd' : 'bhsd',
    outType: cType(typeOf(graph, node.outputs[0]).dtype, where),
    mask, inputs: node.inputs.slice(1), output: node.outputs[0], schedule: 'pingpong', stages: 0,
    // 'direct' accumulation and the lazy rescale: H100, 4608 tokens x 48 heads (bench/results/
    // attention-fp8-pv-2026-11-26.md): split 757, direct 709, direct + lazy 660 µs, the same error
    // (the FP8 accumulator's shorter mantissa does not show); the lazy rescale alone gains nothing
    // with bf16 P·V (753 against 751 µs), so only this path takes it.
    // The integer P·V ('int8') takes the same (its s32 sums rescale by shifts, only in tiles that move a max).
    ...(codedPV(pv) ? { pv, pvAccumulate: 'direct' as const, lazyRescale: true } : {}),
  };
  if (codedPV(d.pv) && mask && (mask.strides[1] || mask.strides[2])) fail(where, `pv='${d.pv}' with a key mask (broadcast over heads and queries)`, `mask strides [${mask.strides}] over (b, h, q, k)`);
  // A mask over every key (or causality) needs registers that the probabilities of the P·V in
  // flight hold otherwise: the softmax waits for its own P·V. A mask that only reaches the first key
  // tiles (Qwen-Image's text) builds without spills in full ping-pong and runs faster (H100 80GB
  // HBM3: 27.9/27.3 against 28.7/28.4 ms of attention per pass, bench/RESULTS.md "Qwen-Image's
  // attention"). A mask with a query axis (per-element loads) keeps the serial order. A partial last
  // key tile (Qwen-Image at 32 / 64 text tokens: 4128 / 4160 keys) takes the ping-pong too, its
  // padded keys set to -inf by the same per-tile bound check (no spills, 168 registers): alone 292
  // against 337-342 µs serial at 32 tokens on an H100 80GB HBM3 (bench/RESULTS.md "Session 9: the
  // partial last key tile in the ping-pong").
  if ((mask && mask.keys >= seqKv) || d.causal) d.schedule = 'pingpong-wait';
  if (mask && mask.strides[2] !== 0) d.schedule = 'serial';
  // With bf16 P·V: row sums by the P·V MMA (ones rows in V's tiles); in the full ping-pong, where
  // 192 divides the padded kv length and two stages fit (Flux.2's 4608 tokens, e4m3 K), 192-key
  // tiles with a quarter of the exponentials by polynomial. H100 (bench/results/
  // attention-fast-2026-11-26.md), attention launches inside the transformers: Flux.2 924-935 ->
  // 860-883 µs (192 keys + MMA sums alone 908, + poly4 860 in the same call), Qwen-Image 419 -> 400
  // µs (MMA sums; poly4 there: 427 -> 414 in another call, and slower alone).
  if (!codedPV(d.pv)) {
    d.lsum = 'mma';
    // s8 Q·Kᵀ with bf16 P·V: 128-key tiles (room for two P arrays: S 64 + O 68 + 2 x 32 registers),
    // every exponential on the MUFU. H100 80GB HBM3, three rounds (bench/RESULTS.md "Session 18: s8
    // Q·Kᵀ in 128-key tiles with two P arrays"): against the 192-key poly4 kernel Flux.2 single
    // 786-800 -> 768-789 µs, joint 782-818 -> 780-788, Qwen-Image's 32-token node 317-322 -> 298-300,
    // the same errors.
    if (qk === 'int8' && d.schedule === 'pingpong' && !d.causal) Object.assign(d, { bn: 128, pBuffers: 2 });
    else {
      const wide = { ...d, bn: 192, stages: 2 };
      if (d.schedule === 'pingpong' && !d.causal && (!mask || mask.strides[2] === 0) && padRows(seqKv) % 192 === 0 && attentionSharedBytes(wide).total <= MAX_SHARED) Object.assign(d, { bn: 192, exp: 'poly', polyEvery: 4 });
      // A stale running max (rescaleSlack 8, O rescaled lazily). H100 80GB HBM3, alternating twice in
      // one call (bench/RESULTS.md "Session 11: a stale running max"): bf16 Flux.2 nodes 817-851 ->
      // 786-810 µs, Qwen-Image masked bf16 414-418 -> 407-408 and FP8 Q·Kᵀ 361-364 -> 354-359, the
      // text encoder's causal node even; but FP8 Q·Kᵀ in 192-key tiles (Flux.2's default then) 700-714 ->
      // 742-748, so that one keeps the eager rescale.
      if (!(codedQK(qk) && d.bn === 192)) Object.assign(d, { lazyRescale: true, rescaleSlack: 8 });
    }
  } else {
    // FP8 P·V: the key tile is part of the semantics (P rounded per tile: pvTile, 192 keys where
    // 192 divides the padded kv length); every exponential on the MUFU. H100 (bench/results/
    // attention-fp8-pv-masked-2026-11-26.md): Flux.2 BN 192 658 µs, BN 128 672-681, BN 192 with
    // poly4 668-688, poly2 731-736; Qwen-Image (BN 128, masked) 344 µs against 358-361 with poly4.
    d.bn = pvTile(seqKv);
    // Two P arrays in the full ping-pong: H100 80GB HBM3 (bench/RESULTS.md "Session 18: FP8 P·V by default", call B6):
    // Flux.2 647-662 -> 628-633 µs, Qwen-Image's 32-token node 282-292 -> 256-258, the same outputs.
    if (d.schedule === 'pingpong' && !d.causal) d.pBuffers = 2;
    // Handing the tensor cores over once the tile's maxima are known (handOver 'max'), where it measured faster: the
    // integer P·V in 192-key tiles, whose two warpgroups otherwise ran their softmaxes nearly in phase (session 31's turn
    // trace: the second a sixth of a turn behind), and FP8 P·V under a key mask (Qwen-Image). H200, bench/RESULTS.md
    // "Session 39" (calls A1-A4, E1, F1), the same outputs: the integer P·V's Flux.2 nodes 676-683 -> 634-643 µs,
    // Qwen-Image's 32-token node 290-297 -> 272-276; FP8 P·V's Qwen-Image nodes 2.4-3.1% faster (32, 64, 256 text
    // tokens). Slower or even, so not taken: the integer P·V in 128-key tiles (Qwen-Image's 256-token node, 340 -> 366
    // µs) and FP8 P·V without a mask (Flux.2: 582-585 -> 584-588 µs; its step even in call F1).
    if (d.schedule === 'pingpong' && !d.causal && (d.pv === 'int8' ? d.bn === 192 : !!mask)) d.handOver = 'max';
  }
  d.stages = attentionSharedBytes({ ...d, stages: 3 }).total <= MAX_SHARED ? 3 : 2;
  return d;
}

/**
 * The keys the last key tile computes with narrowLastTile: those it holds, rounded up to the FP8 P·V's
 * 32-key steps; the whole tile (bn) where the kernel cannot narrow it: FP8 P·V accumulated directly
 * (the models'; with 'split' accumulation, the renderer's default, the narrow turn spills) in the full ping-pong with two P
 * arrays and an even tile count (the last tile then runs in the peeled turn after the paired loop),
 * no last-wave pieces, not causal.
 */
export function lastTileKeys(d: Pick<AttentionDescriptor, 'seqKv' | 'bn' | 'pv' | 'qk' | 'pvAccumulate' | 'schedule' | 'pBuffers' | 'causal' | 'tailPieces'>): number {
  const bn = d.bn ?? 128, kvTiles = padRows(d.seqKv) / bn;
  if (d.pv !== 'fp8' || d.qk !== 'fp8' || d.pvAccumulate !== 'direct' || d.schedule !== 'pingpong' || d.pBuffers !== 2 || d.causal || d.tailPieces || kvTiles % 2 !== 0) return bn;
  return Math.ceil((d.seqKv - (kvTiles - 1) * bn) / 32) * 32;
}

/** The attention's units, one CTA each: (batch, head, 128-query tile). */
const attentionUnits = (d: Pick<AttentionDescriptor, 'batch' | 'heads' | 'seqQ'>) => (padRows(d.seqQ) / 128) * d.heads * d.batch;

/**
 * How many pieces each unit of a partial last wave runs as (0: none). The units are (batch, head,
 * 128-query tile), one CTA an SM; 1728 of them (Flux.2) run as 13 full waves of 132 and a 14th of 12,
 * which keeps the card about 1/14 of the kernel on 12 SMs. Split over key ranges, those 12 units become
 * 12 x P CTAs of 1/P the work that start as SMs free up. P: the most pieces the idle SMs take (units x
 * P <= 132) that divide the key tiles into runs of at least 2 of the same parity as the whole
 * (the two-P-array loop's peeled turns are static). Only where it was measured to pay (bench/RESULTS.md
 * "Session 28"): 8-bit P·V (the H100's kernels; b200 runs bf16 attention), after at least one whole wave,
 * not causal (its tile counts vary).
 */
export function lastWavePieces(d: Pick<AttentionDescriptor, 'batch' | 'heads' | 'seqQ' | 'seqKv' | 'bn' | 'causal' | 'pv'>, sms = H100_SMS): number {
  const units = attentionUnits(d), rest = units % sms, kvTiles = padRows(d.seqKv) / (d.bn ?? 128);
  if (d.causal || !codedPV(d.pv) || units < sms || rest === 0) return 0;
  let best = 0;
  for (let p = 2; p * rest <= sms && p <= kvTiles / 2; p++) {
    if (kvTiles % p === 0 && (kvTiles / p) % 2 === kvTiles % 2) best = p;
  }
  return best;
}

// ---- rendering ------------------------------------------------------------------------------------

const helpers = () => text('attention.cuh');

/** A wgmma instruction as a function over an accumulator array (rendered: its operand list). */
export function wgmmaFunction(kind: 'ss-bf16' | 'ss-e4m3' | 'ss-s8' | 'rs-bf16' | 'rs-e4m3' | 'rs-u8s8', n: number): { name: string; source: string } {
  const name = `dca_wgmma_${kind.replace('-', '_')}_n${n}`;
  const regs = n / 2;
  const d = Array.from({ length: regs }, (_, i) => `%${i}`).join(', ');
  const outs = Array.from({ length: regs }, (_, i) => `"+${kind === 'ss-s8' || kind === 'rs-u8s8' ? 'r' : 'f'}"(d[${i}])`).join(', ');
  let signature: string, instr: string, ins: string;
  if (kind === 'rs-bf16') {
    signature = 'float* d, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint64_t db';
    instr = `wgmma.mma_async.sync.aligned.m64n${n}k16.f32.bf16.bf16 {${d}}, {%${regs}, %${regs + 1}, %${regs + 2}, %${regs + 3}}, %${regs + 4}, p, 1, 1, 0;`;
    ins = `"r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "n"(1)`;
  } else if (kind === 'rs-e4m3') {
    // FP8 takes only K-major operands: no transpose immediates.
    signature = 'float* d, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint64_t db, int scaleD';
    instr = `wgmma.mma_async.sync.aligned.m64n${n}k32.f32.e4m3.e4m3 {${d}}, {%${regs}, %${regs + 1}, %${regs + 2}, %${regs + 3}}, %${regs + 4}, p, 1, 1;`;
    ins = `"r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(scaleD)`;
  } else if (kind === 'rs-u8s8') {
    // u8 P (registers) x s8 Vᵀ -> exact s32 sums (K-major operands, no scale immediates).
    signature = 'uint32_t* d, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint64_t db, int scaleD';
    instr = `wgmma.mma_async.sync.aligned.m64n${n}k32.s32.u8.s8 {${d}}, {%${regs}, %${regs + 1}, %${regs + 2}, %${regs + 3}}, %${regs + 4}, p;`;
    ins = `"r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(scaleD)`;
  } else if (kind === 'ss-s8') {
    // s8 x s8 -> exact s32 sums (K-major operands, no scale immediates).
    signature = 'uint32_t* d, uint64_t da, uint64_t db, int scaleD';
    instr = `wgmma.mma_async.sync.aligned.m64n${n}k32.s32.s8.s8 {${d}}, %${regs}, %${regs + 1}, p;`;
    ins = `"l"(da), "l"(db), "r"(scaleD)`;
  } else {
    signature = 'float* d, uint64_t da, uint64_t db, int scaleD';
    instr = kind === 'ss-bf16'
      ? `wgmma.mma_async.sync.aligned.m64n${n}k16.f32.bf16.bf16 {${d}}, %${regs}, %${regs + 1}, p, 1, 1, 0, 0;`
      : `wgmma.mma_async.sync.aligned.m64n${n}k32.f32.e4m3.e4m3 {${d}}, %${regs}, %${regs + 1}, p, 1, 1;`;
    ins = `"l"(da), "l"(db), "r"(scaleD)`;
  }
  const pred = kind.startsWith('rs-') ? regs + 5 : regs + 2;
  const guard = name.toUpperCase();
  const source = [
    `#if DCA_WGMMA && !defined(${guard})`, `#define ${guard}`,
    `__device__ __forceinline__ void ${name}(${signature}) {`,
    `  asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %${pred}, 0;\\n${instr}\\n}\\n"`,
    `               : ${outs}`,
    `               : ${ins});`,
    '}', '#endif',
  ].join('\n');
  return { name, source };
}

function kernelName(prefix: string, structure: unknown, template: string) {
  return `${prefix}_${jsonHash16({ structure, t: text(template), h: helpers() })}`;
}

/** A strided element offset: `offset + Σ index·stride`, terms with zero stride dropped. */
function offsetExpr(offset: number, terms: [string, number][]): string {
  const parts = terms.filter(([, s]) => s !== 0).map(([i, s]) => `(long long)(${i}) * ${s}LL`);
  return [`${offset}LL`, ...parts].join(' + ');
}

export function renderPack(d: PackDescriptor): AttentionKernel {
  const structure = { ...d, inputs: d.inputs.map((i) => i.type), outputs: d.outputs.length, undeferrable: undefined };
  const name = kernelName('attnpack', structure, 'attention_pack.cu.njk');
  const where = `AttentionPack kernel ${name}`;
  if (![256, 512].includes(d.threads) || d.threads > 16 * d.headDim) fail(where, '256 or 512 threads a role-head, at most 16 a head-dim value', String(d.threads));
  if (d.heads % d.group || d.kvHeads % d.group || d.threads * d.group > 1024) fail(where, 'a group of role-heads dividing heads and kv heads, at most 1024 threads', `${d.group} of ${d.heads}/${d.kvHeads}`);
  if (d.stage && !d.segments.every((s) => stageable(d.inputs[s.x.param].type, s.x))) fail(where, 'bf16 rows in runs of 8 to stage', JSON.stringify(d.segments.map((s) => [d.inputs[s.x.param].type, s.x])));
  if (d.persist && !d.stage) fail(where, 'a persistent pack with staged rows', 'stage off');
  if (d.park && !(codedQK(d.qk) && d.stage)) fail(where, 'parked values: an e4m3 pack with staged rows (or an s8 one)', JSON.stringify({ qk: d.qk, stage: d.stage }));
  const loads = { q: [] as string[], k: [] as string[], v: [] as string[] };
  // RoPE table rows prefetched into L1 a pass ahead (their loads' latency was a fifth of the pack: bench/RESULTS.md
  // "Session 18: what the RoPE tables cost the attention pack").
  const tables = { q: [] as string[], k: [] as string[] };
  const prefetch = { q: [] as string[], k: [] as string[], v: [] as string[] };
  // A deferred GEMM's feature scales (and bias) for this CTA's head, and the norm weights, are the
  // same for every row: staged once per CTA in shared memory as floats (per segment of the CTA's
  // role: D scales, D biases, D weights, each in dcp_lds8's order), read per row from there.
  const staged: string[] = [];
  // ROWS_UNIFORM: where an item's 128 rows lie in one segment of its role (all blocks but those straddling
  // a segment boundary or the role's end), the row pass takes that segment's table pointers and offsets once
  // an item instead of choosing a segment every row (the choice, the zeroed defaults and 64-bit addresses were
  // a sixth of the pack's instructions: bench/RESULTS.md "Session 24"). Staged packs whose segments' token
  // strides agree (the strides are the kernel's constants) and whose tables are float vectors; not persistent
  // ones (not the default) nor those dequantizing a deferred GEMM's output (the own GEMM scales the models'
  // QKV on the H100): with that state beside them they spilled at 80 registers.
  const uniformX = { q: [] as string[], k: [] as string[], v: [] as string[] };
  const uniformRow = { q: [] as string[], k: [] as string[], v: [] as string[] };
  const strides = { x: new Set<number>(), cos: new Set<number>(), sin: new Set<number>() };
  let uniformOk = d.stage && !d.persist;
  // Whether a uniform V block can hold keys the mask may drop (its zeroing is rendered only then).
  let vmaskUniform = false;
  const vmaskKeys = d.vquant?.mask?.window.keys ?? 0;
  /** 8 values a lane as one vector load: unit stride, offsets and strides in whole vectors. */
  const isVector = (offset: number, strides: number[], last: number) => last === 1 && [offset, ...strides].every((v) => v % 8 === 0);
  const pos = '((i & 7) >> 2) * (D / 2) + (i >> 3) * 4 + (i & 3)';
  let stagedFloats = 0;
  const roleIndex = { q: 0, k: 1, v: 2 } as const;
  for (const role of ['q', 'k', 'v'] as const) {
    let roleFloats = 0;
    d.segments.filter((s) => s.role === role).forEach((s, i) => {
      const lines: string[] = [];
      const load8 = (what: string, o: Operand, terms: [string, number][], last: number) => {
        const at = offsetExpr(o.offset, terms);
        const col = '8 * c8';
        return isVector(o.offset, terms.map(([, st]) => st), last)
          ? `dc_load8<float>(in${o.param}, ${at} + ${col}, ${what});`
          : `for (int e = 0; e < 8; ++e) ${what}[e] = dc_load<float>(in${o.param}, ${at} + (long long)(${col} + e) * ${last}LL);`;
      };
      const [sb, ss, sh, sd] = s.x.strides;
      // A uniform block of this segment: the first 128-aligned token at or after its start, if 128 rows fit.
      const firstBlock = Math.ceil(s.start / PACK_ROWS) * PACK_ROWS;
      const holdsBlock = firstBlock + PACK_ROWS <= s.start + s.length;
      if (role === 'v' && holdsBlock && firstBlock < vmaskKeys) vmaskUniform = true;
      const inBlock = (list: string[], body: string) => `${list.length ? 'else ' : ''}if (t0 >= ${s.start} && t0 + 128 <= ${s.start + s.length}) {${/\btl\b/.test(body) ? ` const int tl = t0 - ${s.start};` : ''} ${body} }`;
      const assigns: string[] = ['uni = true;'];
      strides.x.add(ss);
      const xAt = `in${s.x.param} + (${offsetExpr(s.x.offset, [['b', sb], ['tl', ss], ['head', sh]])}) + 8 * c8`;
      if (holdsBlock) uniformX[role].push(inBlock(uniformX[role], `ux = ${xAt};`));
      if (d.stage) {
        lines.push('dc_load8<float>(stage, DCP_SLOT(r, c8), x);');
        prefetch[role].push(`${i ? 'else ' : ''}if (t < ${s.start + s.length}) { const int tl = t - ${s.start}; src = ${xAt}; }`);
      } else lines.push(load8('x', s.x, [['b', sb], ['tl', ss], ['head', sh]], sd));
      const q = s.dequant;
      if (q) {
        // A deferred GEMM's raw sums: times the token's scale and each feature's (plus the bias).
        const j = roleFloats, f = offsetExpr(q.f0, [['head', q.sh]]);
        staged.push(`if (role == ${roleIndex[role]}) for (int i = tid; i < D; i += T) { dq_s[${j} + ${pos}] = dc_load<float>(in${q.ws}, ${f} + i);${q.bias === undefined ? '' : ` dq_s[${j} + D + ${pos}] = dc_load<float>(in${q.bias}, ${f} + i);`} }`);
        roleFloats += d.headDim * (q.bias === undefined ? 1 : 2);
        const tok = offsetExpr(q.tok0, [['b', q.tokB], ['tl', q.tokS]]);
        const bias = q.bias === undefined ? '' : ` dcp_lds8(dq_s + ${j + d.headDim}, c8, D / 2, b_);`;
        lines.push(`{ const float r_ = dc_load<float>(in${q.xs}, ${tok}); float s_[8]${bias ? ', b_[8]' : ''}; dcp_lds8(dq_s + ${j}, c8, D / 2, s_);${bias}\n#pragma unroll\n      for (int e = 0; e < 8; ++e) x[e] = x[e] * r_ * s_[e]${bias ? ' + b_[e]' : ''}; }`);
        uniformOk = false;
      }
      if (s.norm) {
        const j = roleFloats, n = s.norm;
        staged.push(`if (role == ${roleIndex[role]}) for (int i = tid; i < D; i += T) dq_s[${j} + ${pos}] = dc_load<float>(in${n.param}, ${offsetExpr(n.offset, [['i', n.strides[0]]])});`);
        roleFloats += d.headDim;
        lines.push(`dcp_lds8(dq_s + ${j}, c8, D / 2, w);`, 'norm = true;');
        assigns.push(`unorm = true; uwOff = ${j};`);
      } else assigns.push('unorm = false;');
      stagedFloats = Math.max(stagedFloats, roleFloats);
      if (s.cos && s.sin && role !== 'v') {
        lines.push(load8('cs', s.cos, [['tl', s.cos.strides[0]]], s.cos.strides[1]));
        lines.push(load8('sn', s.sin, [['tl', s.sin.strides[0]]], s.sin.strides[1]), 'rope = true;');
        // Token tp's table rows (this lane's 8 values of each) into L1 ahead of their loads.
        const ahead = (o: Operand) => `dcp_prefetch_l1(in${o.param} + (${offsetExpr(o.offset, [['tl', o.strides[0]]])}) + 8LL * c8 * ${o.strides[1]}LL);`;
        tables[role].push(`${tables[role].length ? 'else ' : ''}if (tp >= ${s.start} && tp < ${s.start + s.length}) { const int tl = tp - ${s.start}; ${ahead(s.cos)} ${ahead(s.sin)} }`);
        // Float vectors of 8 whose offsets fit an int.
        if (![s.cos, s.sin].every((o) => d.inputs[o.param].type === 'float' && isVector(o.offset, [o.strides[0]], o.strides[1]) && o.offset + s.length * o.strides[0] + d.headDim < 2 ** 31)) uniformOk = false;
        strides.cos.add(s.cos.strides[0]);
        strides.sin.add(s.sin.strides[0]);
        const at = (o: Operand) => `(int)(${offsetExpr(o.offset, [['tl', o.strides[0]]])}) + 8 * c8`;
        assigns.push(`urope = true; ucsP = in${s.cos.param}; usnP = in${s.sin.param}; ucsAt = ${at(s.cos)}; usnAt = ${at(s.sin)};`);
      } else assigns.push('urope = false;');
      if (holdsBlock) uniformRow[role].push(inBlock(uniformRow[role], assigns.join(' ')));
      loads[role].push(`${i ? 'else ' : ''}if (t < ${s.start + s.length}) { const int tl = t - ${s.start}; ${lines.join(' ')} }`);
    });
  }
  if (Object.values(strides).some((set) => set.size > 1)) uniformOk = false;
  const one = (set: Set<number>) => [...set][0] ?? 0;
  const uniform = uniformOk
    ? {
      x: uniformX, row: uniformRow, vmaskRows: vmaskUniform,
      strides: { x: one(strides.x), cos: one(strides.cos), sin: one(strides.sin) },
    }
    : undefined;
  const vq = d.vquant;
  if (vq && (d.qk !== vq.pv || d.persist || d.group !== 1 || d.threads < d.dp || vq.amax.length !== d.segments.length / 3 || vq.amax.some((a) => d.inputs[a]?.type !== 'float'))) fail(where, "vquant with qk='fp8' (pv='fp8') or qk='int8' (pv='int8'), a CTA per item of one role-head, a thread a channel, a float amax a segment", JSON.stringify({ qk: d.qk, pv: vq.pv, persist: d.persist, group: d.group, amax: vq.amax.map((a) => d.inputs[a]?.type) }));
  const params = [
    ...d.inputs.map((x, i) => `const ${x.type}* __restrict__ in${i}`),
    ...(codedQK(d.qk)
      ? ['uint8_t* __restrict__ qp', 'uint8_t* __restrict__ kp', vq ? 'uint8_t* __restrict__ vt8' : '__nv_bfloat16* __restrict__ vt', 'float* __restrict__ qs', 'float* __restrict__ ks', ...(vq ? ['float* __restrict__ vs'] : [])]
      : ['__nv_bfloat16* __restrict__ qp', '__nv_bfloat16* __restrict__ kp', '__nv_bfloat16* __restrict__ vt']),
  ];
  const vm = vq?.mask;
  const seqQPad = padRows(d.seqQ), seqKvPad = padRows(d.seqKv);
  const tokenBlocks = Math.max(seqQPad, seqKvPad) / PACK_ROWS;
  const roleHeads = d.heads + 2 * d.kvHeads;
  const items = tokenBlocks * (roleHeads / d.group) * d.batch, buffers = d.persist ? 2 : 1;
  const source = `${helpers()}\n${d.qk === 'fp8' ? `${QK_SCALE}\n` : ''}${vq ? `${E4M3_PACK}\n${VT8_CHUNK}\n` : ''}${env.render('attention_pack.cu.njk', {
    name, params, headDim: d.headDim, dp: d.dp, tokenBlocks, roleHeads, heads: d.heads, kvHeads: d.kvHeads, seqQ: d.seqQ, seqKv: d.seqKv,
    seqQPad, seqKvPad, loads, prefetch, tables, stage: d.stage, persist: d.persist, items, buffers, staged, stagedFloats, anyNorm: d.segments.some((s) => s.norm),
    uniform, roleIndex,
    rope: d.segments.some((s) => s.cos) ? d.rope : 'none',
    eps: d.eps, fp8: codedQK(d.qk), int8: d.qk === 'int8', threads: d.threads, group: d.group, order: d.order, minBlocks: d.minBlocks, passUnroll: d.passUnroll, park: d.park,
    vquant: !!vq, vquantS8: vq?.pv === 'int8', vamax: vq?.amax ?? [],
    vmask: vm && { param: vm.param, bool: vm.window.bool, keys: vm.window.keys, at: offsetExpr(vm.window.offset, [['b', vm.window.strides[0]], ['t', vm.window.strides[3]]]) },
  })}`;
  return {
    name, source, hot: true, grid: d.persist ? Math.min(d.persist, items) : items, block: d.threads * d.group, sharedBytes: d.group * PACK_ROWS * ((d.park ? 0 : d.headDim + 2) + (d.stage ? buffers * d.headDim : 0)) * 2,
    args: [...d.inputs.map((x) => x.value), ...d.outputs],
  };
}

/** The most dynamic shared memory a CTA may have on the H100 (227 KB). */
const MAX_SHARED = 232448;

/** Dynamic shared memory of the attention kernel: Q, the K and V stages, barriers, the parked scales (8-bit Q·Kᵀ), alignment slack. */
export function attentionSharedBytes(d: Pick<AttentionDescriptor, 'dp' | 'qk' | 'stages' | 'pv' | 'bn' | 'lsum' | 'seqKv'>): { q: number; k: number; v: number; total: number } {
  const rowBytes = codedQK(d.qk) ? 128 : d.dp * 2, bn = d.bn ?? 128;
  // V (bf16): a tile of DP rows of 64 keys per 64 keys, with 8 rows of ones after each (lsum 'mma').
  const q = 128 * rowBytes, k = bn * rowBytes, v = bn * d.dp * (codedPV(d.pv) ? 1 : 2) + (d.lsum === 'mma' ? (bn / 64) * 8 * 128 : 0);
  // 8-bit Q/K: after the barriers (16-byte aligned), Q's row factors (qk='int8': 64 pairs), then the head's K block scales.
  const parked = codedQK(d.qk) ? 8 + (d.qk === 'int8' ? 512 : 0) + (padRows(d.seqKv) / 128) * 4 : 0;
  return { q, k, v, total: 1024 + q + d.stages * (k + v) + (1 + 4 * d.stages) * 8 + parked };
}

/** Four floats to e4m3 (round to nearest even, saturated), byte i from the i-th argument. */
const E4M3_PACK = [
  '#ifndef DCA_PACK_E4M3X4', '#define DCA_PACK_E4M3X4',
  '__device__ __forceinline__ uint32_t dca_pack_e4m3x4(float a, float b, float c, float d) {',
  '  uint32_t r;',
  '  asm("{\\n.reg .b16 lo, hi;\\ncvt.rn.satfinite.e4m3x2.f32 lo, %2, %1;\\ncvt.rn.satfinite.e4m3x2.f32 hi, %4, %3;\\nmov.b32 %0, {lo, hi};\\n}" : "=r"(r) : "f"(a), "f"(b), "f"(c), "f"(d));',
  '  return r;', '}', '#endif',
].join('\n');

/** FP8 attention's Q/K block scale of an amax (compiler/ops/fused.ts qkBlockScale: the least power of two >= amax / 448, 1 where 0). */
const QK_SCALE = [
  '#ifndef DCA_QK_SCALE', '#define DCA_QK_SCALE',
  '// The e4m3 scale of a Q or K block (fused.ts qkBlockScale): the least power of two >= amax / 448, at least 2^-126 (1',
  '// where amax is 0 or not a number), so that x / scale is exact: codes are x times the exact 1 / scale.',
  '__device__ __forceinline__ float dca_qk_scale(float amax) {',
  '  return amax > 0.f ? __uint_as_float(max((__float_as_uint(__fdiv_rn(amax, 448.f)) + 0x7fffffu) & 0x7f800000u, 0x00800000u)) : 1.f;',
  '}',
  '#endif',
].join('\n');

/** Vt8's chunk coding and placement (the V quantization kernel's and the vquant pack's: one definition of the layout). */
const VT8_CHUNK = [
  '#ifndef DCA_VT8_CHUNK', '#define DCA_VT8_CHUNK',
  '// One Vt8 chunk: 16 keys of one channel (bf16 x in key order) as x · r (dc_qmul) in e4m3, saturated, or (S8: pv=\'int8\',',
  '// r from dc_s8_scale, so |x · r| <= 127.00002) as s8 codes, to nearest even; byte l holds key 2·(l/4) + (l%2) +',
  '// 8·((l/2)%2), the attention\'s P register order (compiler/ops/packed-attention.ts vt8Key).',
  'template <bool S8> __device__ __forceinline__ uint4 dca_vt8_chunk(const __nv_bfloat16* x, const dc_qd_f& qd) {',
  '  uint32_t w[4];',
  '#pragma unroll',
  '  for (int q = 0; q < 4; ++q) {',
  '    const float a = dc_qmul(__bfloat162float(x[2 * q]), qd), b = dc_qmul(__bfloat162float(x[2 * q + 1]), qd);',
  '    const float c = dc_qmul(__bfloat162float(x[2 * q + 8]), qd), d = dc_qmul(__bfloat162float(x[2 * q + 9]), qd);',
  '    w[q] = S8 ? dca_pack_b8x4(a, b, c, d) : dca_pack_e4m3x4(a, b, c, d);',
  '  }',
  '  return make_uint4(w[0], w[1], w[2], w[3]);', '}',
  '// Byte offset of run r (keys 16·r.., r < 4) of channel d in a 64-key Vt8 block: 64-byte rows, the 64-byte swizzle.',
  '__device__ __forceinline__ int dca_vt8_at(int d, int r) { return d * 64 + ((r ^ ((d >> 1) & 3)) << 4); }',
  '#endif',
].join('\n');

/**
 * A reduction tree over a[from..from+n) into a[from] (statements: short dependent chains), `arity` operands a statement
 * (the last of a level may take fewer): op folds them.
 */
export function treeLines(op: (...xs: string[]) => string, a: string, from: number, n: number, arity = 2): string[] {
  const lines: string[] = [];
  for (let m = n; m > 1; m = Math.ceil(m / arity)) {
    const h = Math.ceil(m / arity);
    for (let g = 0; g < h; g++) {
      const xs = Array.from({ length: arity }, (_, k) => g + k * h).filter((i) => i < m).map((i) => `${a}[${from + i}]`);
      if (xs.length > 1) lines.push(`${a}[${from + g}] = ${op(...xs)};`);
    }
  }
  return lines;
}
const fmax = (...xs: string[]) => xs.reduce((x, y) => `fmaxf(${x}, ${y})`);
/** Integer maxima folded left: ptxas makes each max(max(a, b), c) one three-input VIMNMX3 on sm_90. */
const imax = (...xs: string[]) => xs.reduce((x, y) => `max(${x}, ${y})`);

/** The integer P·V's key count bound: s32 sums of u8 P' · s8 V codes add at most 255 · 127 a key. */
const INT8_PV_MAX_KEYS = Math.floor(2 ** 31 / (255 * 127));

export function renderAttention(d: AttentionDescriptor): AttentionKernel {
  const structure = { ...d, inputs: d.inputs.length, output: 0, mask: d.mask && { ...d.mask, value: 0 } };
  const name = kernelName('attn', structure, 'attention.cu.njk');
  const where = `PackedAttention kernel ${name}`;
  const fp8 = codedQK(d.qk), int8 = d.qk === 'int8', pv8 = codedPV(d.pv), pvInt = d.pv === 'int8', split = pv8 && d.pvAccumulate !== 'direct';
  const sq = padRows(d.seqQ), skv = padRows(d.seqKv);
  const bn = d.bn ?? 128, lsumMma = d.lsum === 'mma';
  const colMask = !!d.mask && d.mask.strides[2] === 0 && !d.causal;
  if (bn !== 128 && bn !== 192) fail(where, 'key tiles of 128 or 192', String(bn));
  if (bn !== 128 && (d.causal || (d.mask && !colMask) || skv % bn !== 0)) fail(where, 'key tiles of 192 with no causality or per-query mask, a kv length 192 divides', `${skv} keys${d.causal ? ', causal' : ''}`);
  if (pv8 && lsumMma) fail(where, 'MMA row sums with bf16 P·V', `pv='${d.pv}'`);
  if (pvInt && d.pvAccumulate !== 'direct') fail(where, "pv='int8' accumulated directly (its s32 sums)", `pvAccumulate '${d.pvAccumulate ?? 'split'}'`);
  if (pvInt && skv > INT8_PV_MAX_KEYS) fail(where, `pv='int8' over at most ${INT8_PV_MAX_KEYS} keys (its s32 sums)`, `${skv} keys`);
  if (d.rescaleSlack !== undefined && (pv8 || !Number.isInteger(d.rescaleSlack) || d.rescaleSlack < 0 || d.rescaleSlack > 16)) fail(where, 'a rescale slack of 0-16 (log2 units) with bf16 P·V', `${d.rescaleSlack}${pv8 ? ` with pv='${d.pv}'` : ''}`);
  if (d.pBuffers === 2 && !((pv8 || bn === 128) && d.schedule === 'pingpong' && !d.causal)) fail(where, 'two P arrays with 8-bit P·V or 128-key tiles, in the full ping-pong, not causal', `pv='${d.pv ?? 'bf16'}', BN ${bn}, schedule '${d.schedule}'${d.causal ? ', causal' : ''}`);
  const units = attentionUnits(d), kvTiles = skv / bn, pieces = d.tailPieces ?? lastWavePieces(d);
  const tailUnits = pieces ? units % H100_SMS : 0, fullUnits = units - tailUnits;
  if (pv8 && d.qk !== d.pv) fail(where, `pv='${d.pv}' with qk='${d.pv}'`, `qk='${d.qk}'`);
  if (pieces && (d.causal || !Number.isInteger(pieces) || pieces < 2 || kvTiles % pieces !== 0 || kvTiles / pieces < 2 || (kvTiles / pieces) % 2 !== kvTiles % 2 || tailUnits === 0)) {
    fail(where, 'last-wave pieces that split the key tiles into runs of 2 or more of the whole\'s parity, not causal, with a partial last wave', `${pieces} pieces of ${kvTiles} key tiles, ${units} units${d.causal ? ', causal' : ''}`);
  }
  const lastKeys = d.narrowLastTile === false ? bn : lastTileKeys({ ...d, tailPieces: pieces });
  if (d.narrowLastTile && lastKeys >= bn) fail(where, 'a narrow last key tile with FP8 P·V accumulated directly in the full ping-pong, two P arrays, an even tile count, no last-wave pieces, and keys past the last tile\'s', `${kvTiles} tiles of ${bn} keys over ${d.seqKv} keys, pv='${d.pv ?? 'bf16'}', schedule '${d.schedule}', ${d.pBuffers ?? 1} P arrays${pieces ? `, ${pieces} pieces` : ''}`);
  const smem = attentionSharedBytes(d);
  if (smem.total > MAX_SHARED) fail(where, `at most ${MAX_SHARED} bytes of shared memory`, `${smem.total} (${d.stages} stages of ${bn} keys)`);
  const wgS = wgmmaFunction(int8 ? 'ss-s8' : fp8 ? 'ss-e4m3' : 'ss-bf16', bn), wgLast = wgmmaFunction('ss-e4m3', lastKeys), wgPV = wgmmaFunction(pvInt ? 'rs-u8s8' : pv8 ? 'rs-e4m3' : 'rs-bf16', d.dp + (lsumMma ? 8 : 0));
  const indent = (lines: string[]) => lines.map((l) => `          ${l}`).join('\n');
  // Row maxima: per 64-key region (r[8k]), then over the regions; row sums: over every column group.
  // intMax (s8 Q·Kᵀ, every key kept: no mask, causality or partial tile): the maxima over the s32 scores, each score converted
  // to fp32 only where its exponential reads it, so the conversions leave the chain before the maxima.
  const intMax = int8 && !d.mask && !d.causal && d.seqKv % bn === 0;
  // Each row's maximum of a 64-key region into r[8k]. fp32: per column group's pair, then over the 8 groups. intMax: the
  // region's 16 s32 scores of the row in three-input steps (9 maxima, 6 of them VIMNMX3, instead of 15 two-input ones).
  const regionTree = (r: string, row: number, k: number) => {
    if (!intMax) return treeLines(fmax, r, 8 * k, 8);
    const v = `v${row}_${k}`, cols = Array.from({ length: 16 }, (_, i) => `(int)S32[${4 * (8 * k + (i >> 1)) + 2 * row + (i & 1)}]`);
    return [`int ${v}[16] = { ${cols.join(', ')} };`, ...treeLines(imax, v, 0, 16, 3), `${r}[${8 * k}] = ${v}[0];`];
  };
  const regionMax = indent(Array.from({ length: bn / 64 }, (_, k) => [...regionTree('r0', 0, k), ...regionTree('r1', 1, k)]).flat());
  const overRegions = (r: string) => Array.from({ length: bn / 64 }, (_, k) => `${r}[${8 * k}]`).reduce((x, y) => fmax(x, y));
  const add = (x: string, y: string) => `${x} + ${y}`, hadd = (x: string, y: string) => `dca_hadd2(${x}, ${y})`;
  const sumTree = indent([...treeLines(add, 'q0', 0, bn / 8), ...treeLines(add, 'q1', 0, bn / 8)]);
  // pv='int8': its four running f16 pair sums a row.
  const pvSumTree = indent([...treeLines(hadd, 'q0', 0, 4), ...treeLines(hadd, 'q1', 0, 4)]);
  // The narrow last tile's: regions of 64 keys, the last one partial; with 192-key tiles each region's maximum times its
  // K block's factor (the tile's parity is static there: regions lie wholly in one block).
  const lastGroups = lastKeys / 8, lastRegions = Array.from({ length: Math.ceil(lastGroups / 8) }, (_, k) => k);
  const lastRegionMax = indent(lastRegions.flatMap((k) => [...treeLines(fmax, 'r0', 8 * k, Math.min(8, lastGroups - 8 * k)), ...treeLines(fmax, 'r1', 8 * k, Math.min(8, lastGroups - 8 * k))]));
  const lastMxRow = (r: string, row: number) => lastRegions.map((k) => (fp8 && bn === 192 ? `${r}[${8 * k}] * CR(${8 * k}, ${row})` : `${r}[${8 * k}]`)).reduce((x, y) => fmax(x, y));
  const lastSumTree = indent([...treeLines(add, 'q0', 0, lastGroups), ...treeLines(add, 'q1', 0, lastGroups)]);
  const packed = fp8 ? 'uint8_t' : '__nv_bfloat16';
  const params = [
    ...(d.mask ? [`const ${d.mask.type}* __restrict__ mask`] : []),
    `const ${packed}* __restrict__ qp`, `const ${packed}* __restrict__ kp`, `const ${pv8 ? 'uint8_t' : '__nv_bfloat16'}* __restrict__ vt`,
    ...(fp8 ? ['const float* __restrict__ qs', 'const float* __restrict__ ks'] : []),
    ...(pv8 ? ['const float* __restrict__ vs'] : []),
    `${d.outType}* __restrict__ out`,
  ];
  let maskLoad = '';
  if (d.mask) {
    const [mb, mh, mq, mk] = d.mask.strides;
    const at = offsetExpr(d.mask.offset, [['b', mb], ['h', mh], [`min(row, ${d.seqQ - 1})`, mq], [`min(col, ${d.seqKv - 1})`, mk]]);
    maskLoad = d.mask.bool ? `(dc_load<float>(mask, ${at}) != 0.f ? 0.f : -INFINITY)` : `dc_load<float>(mask, ${at})`;
  }
  // The epilogue stages O's 16-bit rows in shared memory (over Q and the K stages) and stores them back 16 bytes a lane in
  // row order (DP / 8 lanes a row: DP 32-256), where a row is the head's whole width and 128 of them fit there.
  const stagedRow = d.dp * 2 + 16;
  const stagedOut = d.dp === d.headDim && d.dp >= 32 && 256 % d.dp === 0 && (d.outType === '__nv_bfloat16' || d.outType === '__half') && 16 + 128 * stagedRow <= smem.q + d.stages * smem.k;
  const outRow = d.outLayout === 'bshd'
    ? `((long long)(b * ${d.seqQ} + r) * ${d.heads} + h) * ${d.headDim}LL`
    : `((long long)(b * ${d.heads} + h) * ${d.seqQ} + r) * ${d.headDim}LL`;
  const source = [helpers(), ...(pv8 && !pvInt ? [E4M3_PACK] : []), wgS.source, ...(lastKeys < bn ? [wgLast.source] : []), wgPV.source, env.render('attention.cu.njk', {
    name, params, dp: d.dp, headDim: d.headDim, qBytes: smem.q, kBytes: smem.k, vBytes: smem.v,
    qTiles: sq / 128, kvTiles, tailPieces: tailUnits ? pieces : 0, tailUnits, fullUnits, pieceTiles: pieces ? kvTiles / pieces : 0, partF4: (d.dp + (lsumMma ? 8 : 0)) / 8 + 1, heads: d.heads, kvHeads: d.kvHeads, group: d.heads / d.kvHeads, seqQ: d.seqQ, seqKv: d.seqKv,
    causal: d.causal, fp8, int8, intMax, regionMaxFn: intMax ? 'max' : 'fmaxf', sAcc: int8 ? 'S32' : 'S', mask: !!d.mask, masked: !!d.mask || d.causal, bound: d.seqKv % bn !== 0, maskLoad,
    maskTiles: d.causal || !d.mask ? skv / bn : Math.ceil(d.mask.keys / bn),
    bn, colMask, prescaled: (!!d.mask || d.causal) && !colMask, scaleSplit: fp8 && bn === 192, polyEvery: d.exp === 'poly' ? (d.polyEvery ?? 4) : 0, regionMax, mxRow0: overRegions('r0'), mxRow1: overRegions('r1'), sumTree, lsumMma, kBlocks128: skv / 128,
    qHeadBytes: fp8 ? sq * 128 : sq * d.dp * 2, kHeadBytes: fp8 ? skv * 128 : skv * d.dp * 2, vHeadBytes: skv * d.dp * (pv8 ? 1 : 2),
    qBlocks: fp8 ? 1 : d.dp / 64, kBlocks: fp8 ? 1 : d.dp / 64, vBlocks: bn / 64, vRowBytes: pv8 ? 64 : 128,
    pv8, pvInt, pLog2: U8_P_LOG2.toPrecision(9), oAcc: split ? 'Ot' : pvInt ? 'Oi' : 'O', split, lazyRescale: !!d.lazyRescale, rescaleSlack: d.rescaleSlack ?? 0, qBlockBytes: sq * 128, kBlockBytes: skv * 128,
    narrowLast: lastKeys < bn, lastKeys, lastWgmmaS: wgLast.name, lastRegionMax, lastMxRow0: lastMxRow('r0', 0), lastMxRow1: lastMxRow('r1', 1), lastSumTree, pvSumTree,
    kSteps: fp8 ? 4 : d.dp / 16, wgmmaS: wgS.name, wgmmaPV: wgPV.name, mmaS: int8 ? 'dca_mma_s8' : fp8 ? 'dca_mma_e4m3' : 'dca_mma_bf16',
    scaleLog2: (d.scale * Math.LOG2E).toPrecision(9), outType: d.outType, outRow, schedule: d.schedule.startsWith('pingpong') ? 'pingpong' : d.schedule, stages: d.stages, pvInFlight: d.schedule === 'pingpong' ? 1 : 0,
    maskUsesRow: !!d.mask && d.mask.strides[2] !== 0, pBuffers: d.pBuffers ?? 1, handOver: d.handOver ?? 'issue',
    stagedOut, stagedRow, prefetchNext: fullUnits > H100_SMS, sms: H100_SMS,
  })].join('\n');
  return {
    name, source, hot: true, grid: fullUnits + tailUnits * pieces, block: 384, sharedBytes: smem.total,
    // At most two key tiles: the ping-pong peels every turn (one straight line for ptxas), and the shapes that reach it
    // are tiny (the masked integer P·V over two 192-key tiles spills 8 bytes there: bench/RESULTS.md "Session 30"), so a
    // spill is tolerated; serialized wgmma never is, and a kernel of more tiles must not spill.
    ...(kvTiles <= 2 ? { spillsTolerated: true } : {}),
    args: [...(d.mask ? [d.mask.value] : []), ...d.inputs, d.output],
  };
}

export function vquantDescriptor(graph: Graph, node: Node): VQuantDescriptor {
  const where = `AttentionQuantizeV kernel -> ${node.outputs[0]}`;
  const shape = typeOf(graph, node.inputs[0]).shape;
  if (shape.length !== 5 || shape[4] !== 64) fail(where, 'a packed Vt [B, Hkv, S/64, DP, 64]', `[${shape}]`);
  const mask = node.inputs[1] ? keyMaskWindow(graph, node.inputs[1], (node.attrs.seqKv as number | undefined) ?? fail(where, 'the seqKv attribute with a mask', 'none'), where) : undefined;
  return { kind: 'attention-vquant', heads: shape[0] * shape[1], kvHeads: shape[1], seqKvPad: shape[2] * 64, dp: shape[3], pv: vquantPv(node, where), input: node.inputs[0], ...(mask ? { mask } : {}), outputs: node.outputs.slice() };
}

/**
 * The V quantization of pv='fp8' (templates/attention_vquant.cu.njk): one CTA per (head, `ch`
 * channels), Vt read once and held in registers: the most channels (16 down to 2) for which a
 * thread holds at most 8 runs of 16 tokens (64 registers; with 9, Flux.2's 4608 keys, ptxas spilled
 * the quantization, then the exact division dc_qdiv, at two CTAs a SM).
 */
export function renderVQuant(d: VQuantDescriptor): AttentionKernel {
  const blocks64 = d.seqKvPad / 64;
  const ch = [16, 8, 4, 2].find((c) => d.dp % c === 0 && Math.ceil((blocks64 * c * 4) / 256) <= 8);
  const structure = { dp: d.dp, heads: d.heads, kvHeads: d.kvHeads, seqKvPad: d.seqKvPad, pv: d.pv, ch, mask: d.mask && { ...d.mask, value: 0 } };
  const name = kernelName('attnvq', structure, 'attention_vquant.cu.njk');
  if (d.seqKvPad % 128 || !ch) fail(`AttentionQuantizeV kernel ${name}`, 'a kv length of whole 128-token tiles, at most 16384 tokens', `${d.seqKvPad} tokens, head dim ${d.dp}`);
  const m = d.mask;
  const source = [helpers(), E4M3_PACK, VT8_CHUNK, env.render('attention_vquant.cu.njk', {
    name, dp: d.dp, blocks64, ch, kvHeads: d.kvHeads, s8: d.pv === 'int8', mask: !!m && m.keys > 0, maskType: m?.type, maskBool: m?.bool, maskKeys: m?.keys,
    maskAt: m && offsetExpr(m.offset, [['b', m.strides[0]], ['t', m.strides[3]]]),
  })].join('\n');
  return { name, source, hot: true, grid: d.heads * (d.dp / ch), block: 256, sharedBytes: 0, args: [d.input, ...(m && m.keys > 0 ? [m.value] : []), ...d.outputs] };
}
