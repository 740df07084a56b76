/**
 * The compiler's own ops (domain "dc"), produced by canonicalize and fuse-* passes, each with
 * inference and a plain reference implementation that spells out its meaning.
 *
 *   Linear(x, W[, b]){transB}     y = x·W (+ b) over the last axis of x, any leading dims; W is
 *                                 [K, N], or [N, K] with transB=1 (PyTorch's layout, as exported).
 *   Silu(x)                       x·sigmoid(x)
 *   SwiGLU(x)                     silu(a)·b where a, b are the first and second halves of x's last axis
 *   Modulate(x, scale, shift)     x·(1 + scale) + shift (AdaLN), broadcast
 *   RoPE(x, cos, sin){style}      y = x·cos + rot(x)·sin on the last axis; style 'interleaved'
 *                                 rotates pairs (x0,x1) -> (-x1,x0), 'half' rotates halves.
 *   FusedAttention(mask, [q k v qNorm kNorm cos sin] x segments)
 *                                 per role, the sequence is the concatenation of `segments`
 *                                 pieces, each optionally RMS-normalised over the head dim
 *                                 (weights qNorm/kNorm, eps) and then rotated by RoPE (cos/sin,
 *                                 [S_i, D] values); then softmax(Q·Kᵀ·scale + mask)·V with
 *                                 grouped-query heads; a fully masked row gives 0.
 *                                 Inputs are 4-D in `layouts` ('bshd' or 'bhsd' for q, k, v);
 *                                 the output is in `outLayout`, of dtype `to` (default: q's).
 *                                 qk='fp8': Q and K are rounded to FP8 per (head, 128-token block).
 *                                 qk='int8': Q and K as s8 codes times an fp32 scale (amax/127), one
 *                                 per Q row (token) and per K (head, 128-token block) (quantizeS8).
 *                                 pv='fp8' (with qk='fp8'): P·V in FP8 as the kernel computes it:
 *                                 V (bf16) rounded to e4m3 per (head, channel), P rounded to e4m3
 *                                 per key tile of the online softmax (pvWeights; pvTile keys).
 *                                 pv='int8' (with qk='int8'): P·V on 8-bit integers as the kernel
 *                                 computes it: V (bf16) as s8 codes per (head, channel), P as u8
 *                                 codes against a running max held at whole powers of two
 *                                 (pvWeights).
 *                                 With a mask it must be a key mask (broadcast over heads and
 *                                 queries); keys it drops (maskDrops) have V = 0 and set no scale.
 */
import { fail } from '../errors.ts';
import type { Node } from '../ir/graph.ts';
import type { Tensor } from '../ir/tensor.ts';
import { type DType, dtypeFromOnnx, roundToBf16, roundToF16 } from '../ir/dtype.ts';
import { E4M3_MAX, amaxScale, fp8Reciprocal, fp8Scale, rne, roundE4M3, roundE4M3Scaled } from '../quant/formats.ts';
import { roundTo } from './elementwise.ts';
import {
  type OpDef, type RuntimeValue, attrFloat, attrInt, attrString, broadcastIndex, broadcastShapes,
  newTensor, optionalTensor, out, tensorArg,
} from './op.ts';

// ---- Linear, activations, modulation -----------------------------------------------------------------

function linearDims(x: readonly number[], w: readonly number[], transB: boolean, where: string) {
  if (w.length !== 2 || x.length < 1) fail(where, 'a 2-D weight and an input of rank >= 1', `[${x}] x [${w}]`);
  const [k, n] = transB ? [w[1], w[0]] : w;
  if (x[x.length - 1] !== k) fail(where, `input features ${k} (weight [${w}]${transB ? ', transposed' : ''})`, `[${x}]`);
  return { k, n, m: x.slice(0, -1).reduce((a, b) => a * b, 1), outShape: [...x.slice(0, -1), n] };
}

const linear: OpDef = {
  infer: (c) => {
    const { n, outShape } = linearDims(c.input(0).shape, c.input(1).shape, attrInt(c.node, 'transB', 0) === 1, c.where);
    if (c.has(2) && c.input(2).shape.reduce((a, b) => a * b, 1) !== n) fail(c.where, `a bias of ${n} values`, `[${c.input(2).shape}]`);
    return [out(c.input(0).dtype, outShape)];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node), w = tensorArg(ins, 1, node), bias = optionalTensor(ins, 2);
    const transB = attrInt(node, 'transB', 0) === 1;
    const { k, n, m, outShape } = linearDims(x.shape, w.shape, transB, node.op);
    const X = x.toFloat32(), W = w.toFloat32();
    const y = newTensor(x.dtype, outShape);
    const Y = y.data as Float32Array;
    const acc = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) acc[j] = bias ? bias.get(j) : 0;
      for (let kk = 0; kk < k; kk++) {
        const xv = X[i * k + kk];
        if (transB) for (let j = 0; j < n; j++) acc[j] += xv * W[j * k + kk];
        else for (let j = 0; j < n; j++) acc[j] += xv * W[kk * n + j];
      }
      for (let j = 0; j < n; j++) Y[i * n + j] = acc[j];
    }
    return [y];
  },
  flops: (node, [x, w]) => {
    const { k, n, m } = linearDims(x.shape, w.shape, attrInt(node, 'transB', 0) === 1, 'Linear');
    return 2 * m * k * n;
  },
};

const sigmoid = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

const silu: OpDef = {
  infer: (c) => [c.input(0)],
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const y = newTensor(x.dtype, x.shape);
    for (let i = 0; i < x.size; i++) y.set(i, x.get(i) * sigmoid(x.get(i)));
    return [y];
  },
};

const swiglu: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const d = x.shape[x.shape.length - 1];
    if (d % 2) fail(c.where, 'an even last dim', `[${x.shape}]`);
    return [out(x.dtype, [...x.shape.slice(0, -1), d / 2])];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const d = x.shape[x.shape.length - 1], h = d / 2;
    const y = newTensor(x.dtype, [...x.shape.slice(0, -1), h]);
    for (let r = 0; r < x.size / d; r++) {
      for (let i = 0; i < h; i++) {
        const a = x.get(r * d + i), b = x.get(r * d + h + i);
        y.set(r * h + i, a * sigmoid(a) * b);
      }
    }
    return [y];
  },
};

const modulate: OpDef = {
  infer: (c) => [out(c.input(0).dtype, broadcastShapes([c.input(0).shape, c.input(1).shape, c.input(2).shape], c.where))],
  exec: (ins, node) => {
    const [x, scale, shift] = [0, 1, 2].map((i) => tensorArg(ins, i, node));
    const shape = broadcastShapes([x.shape, scale.shape, shift.shape], node.op);
    const [mx, ms, mt] = [x, scale, shift].map((t) => broadcastIndex(t.shape, shape));
    const y = newTensor(x.dtype, shape);
    for (let k = 0; k < y.size; k++) y.set(k, x.get(mx[k]) * (1 + scale.get(ms[k])) + shift.get(mt[k]));
    return [y];
  },
};

// ---- RoPE ------------------------------------------------------------------------------------------

function rotate(style: string, x: Float32Array, base: number, d: number, i: number): number {
  if (style === 'interleaved') return i % 2 === 0 ? -x[base + i + 1] : x[base + i - 1];
  const h = d / 2;
  return i < h ? -x[base + i + h] : x[base + i - h];
}

const rope: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    broadcastShapes([x.shape, c.input(1).shape, c.input(2).shape], c.where);
    const to = c.node.attrs.to as number | undefined;
    return [out(to !== undefined ? dtypeFromOnnx(to)! : x.dtype, x.shape)];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node), cos = tensorArg(ins, 1, node), sin = tensorArg(ins, 2, node);
    const style = attrString(node, 'style', 'interleaved');
    const to = node.attrs.to !== undefined ? dtypeFromOnnx(node.attrs.to as number)! : x.dtype;
    const cMap = broadcastIndex(cos.shape, x.shape), sMap = broadcastIndex(sin.shape, x.shape);
    const X = x.toFloat32(), d = x.shape[x.shape.length - 1];
    const y = newTensor(to, x.shape);
    for (let k = 0; k < x.size; k++) {
      const i = k % d;
      y.set(k, roundTo(to, X[k] * cos.get(cMap[k]) + rotate(style, X, k - i, d, i) * sin.get(sMap[k])));
    }
    return [y];
  },
};

// ---- FusedAttention --------------------------------------------------------------------------------

export const ATTENTION_ROLES = ['q', 'k', 'v', 'qNorm', 'kNorm', 'cos', 'sin'] as const;
export const attentionInput = (segment: number, role: (typeof ATTENTION_ROLES)[number]) => 1 + segment * ATTENTION_ROLES.length + ATTENTION_ROLES.indexOf(role);

export interface Dims { b: number; h: number; s: number; d: number }

function dimsOf(shape: readonly number[], layout: string): Dims {
  return layout === 'bshd' ? { b: shape[0], s: shape[1], h: shape[2], d: shape[3] } : { b: shape[0], h: shape[1], s: shape[2], d: shape[3] };
}

function layoutsOf(node: Node): string[] {
  return ((node.attrs.layouts as readonly string[] | undefined) ?? ['bhsd', 'bhsd', 'bhsd']).slice();
}

export function attentionPlan(node: Node, shapeOf: (i: number) => readonly number[] | undefined, where: string) {
  const segments = attrInt(node, 'segments', 1);
  const layouts = layoutsOf(node);
  const roles = (['q', 'k', 'v'] as const).map((role, r) => {
    let total: Dims | undefined;
    for (let s = 0; s < segments; s++) {
      const shape = shapeOf(attentionInput(s, role));
      if (!shape || shape.length !== 4) fail(where, `a 4-D ${role} for segment ${s}`, shape ? `[${shape}]` : 'none');
      const d = dimsOf(shape, layouts[r]);
      if (!total) total = { ...d };
      else if (d.b !== total.b || d.h !== total.h || d.d !== total.d) fail(where, `${role} segments agreeing on batch, heads, head size`, `[${shape}]`);
      else total.s += d.s;
    }
    return total!;
  });
  const [q, k, v] = roles;
  if (q.h % k.h || k.h !== v.h || q.d !== k.d || k.s !== v.s || q.b !== k.b) {
    fail(where, 'q heads a multiple of kv heads, matching head sizes and kv lengths', `q ${JSON.stringify(q)} k ${JSON.stringify(k)} v ${JSON.stringify(v)}`);
  }
  const outLayout = attrString(node, 'outLayout', 'bhsd');
  const outShape = outLayout === 'bshd' ? [q.b, q.s, q.h, v.d] : [q.b, q.h, q.s, v.d];
  return { segments, layouts, q, k, v, outShape, outLayout };
}

/**
 * Gathers one role's segments into [B, H, S, D] float32, applying the norm/RoPE prologue. With 8-bit
 * Q·Kᵀ (qk 'fp8' or 'int8') Q's and K's values are rounded to bf16 after it, as the bf16 model holds
 * q and k, before they are quantized (and the pack parks them in shared memory as bf16).
 */
export function assemble(ins: readonly (RuntimeValue | undefined)[], node: Node, role: 'q' | 'k' | 'v', layout: string, total: Dims): Float32Array {
  const segments = attrInt(node, 'segments', 1);
  const toBf16 = role !== 'v' && codedQK(attrString(node, 'qk', 'bf16'));
  const eps = attrFloat(node, 'normEps', 1e-6);
  const style = attrString(node, 'ropeStyle', 'interleaved');
  const outBuf = new Float32Array(total.b * total.h * total.s * total.d);
  const row = new Float32Array(total.d);
  let offset = 0;
  for (let s = 0; s < segments; s++) {
    const x = tensorArg(ins, attentionInput(s, role), node);
    const d = dimsOf(x.shape, layout);
    const norm = role === 'v' ? undefined : optionalTensor(ins, attentionInput(s, role === 'q' ? 'qNorm' : 'kNorm'));
    const cos = role === 'v' ? undefined : optionalTensor(ins, attentionInput(s, 'cos'));
    const sin = role === 'v' ? undefined : optionalTensor(ins, attentionInput(s, 'sin'));
    if (cos && (cos.size !== d.s * d.d || !sin || sin.size !== cos.size)) fail(`FusedAttention node '${node.name}'`, `RoPE tables of ${d.s}x${d.d} values`, `${cos.size}`);
    const X = x.toFloat32();
    for (let b = 0; b < d.b; b++) for (let h = 0; h < d.h; h++) for (let t = 0; t < d.s; t++) {
      const base = layout === 'bshd' ? ((b * d.s + t) * d.h + h) * d.d : ((b * d.h + h) * d.s + t) * d.d;
      for (let i = 0; i < d.d; i++) row[i] = X[base + i];
      if (norm) {
        let ms = 0;
        for (let i = 0; i < d.d; i++) ms += row[i] * row[i];
        const r = 1 / Math.sqrt(ms / d.d + eps);
        for (let i = 0; i < d.d; i++) row[i] = row[i] * r * norm.get(i);
      }
      const dst = ((b * total.h + h) * total.s + offset + t) * total.d;
      for (let i = 0; i < d.d; i++) {
        const y = cos && sin ? row[i] * cos.get(t * d.d + i) + rotate(style, row, 0, d.d, i) * sin.get(t * d.d + i) : row[i];
        outBuf[dst + i] = toBf16 ? roundToBf16(y) : y;
      }
    }
    offset += d.s;
  }
  return outBuf;
}

/** Output dtype: the `to` attribute (an ONNX dtype code) when present, else that of q. */
const outDtype = (node: Node, q: DType): DType => (node.attrs.to !== undefined ? dtypeFromOnnx(node.attrs.to as number)! : q);

/** FP8 attention (qk='fp8'): Q and K rounded to e4m3 with one scale per head and 128-token block
 * (qkBlockScale), the SageAttention / FA3 recipe; softmax and P·V stay in high precision. */
export const QK_BLOCK = 128;
function quantizeBlocks(x: Float32Array, d: Dims): void {
  for (let bh = 0; bh < d.b * d.h; bh++) {
    for (let t0 = 0; t0 < d.s; t0 += QK_BLOCK) {
      const start = (bh * d.s + t0) * d.d, end = (bh * d.s + Math.min(t0 + QK_BLOCK, d.s)) * d.d;
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
      // The pack's codes: x times the scale's reciprocal (exact: a power of two), as every 8-bit code.
      const scale = qkBlockScale(amax), r = fp8Reciprocal(scale);
      for (let i = start; i < end; i++) x[i] = roundE4M3Scaled(x[i], r) * scale;
    }
  }
}

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
/**
 * The e4m3 scale of a Q or K block (qk='fp8'): the least power of two >= fp32(amax / 448), at least 2^-126
 * (1 where amax is 0, negative or not a number). A power of two makes x / scale exact, so the pack codes a
 * value with one multiply by the exact 1 / scale (the exact division's five instructions, dc_qdiv then, were a sixth of the pack's:
 * bench/RESULTS.md "Session 24"). e4m3's three significand bits are the same in every binade; against
 * amax / 448 the codes are up to twice as small, so only values near e4m3's subnormals lose precision.
 * The GPU's form: compiler/codegen/attention.ts QK_SCALE (dca_qk_scale).
 */
export function qkBlockScale(amax: number): number {
  if (!(amax > 0)) return 1;
  f32[0] = amax / E4M3_MAX;
  // The exponent field, one up unless the significand bits are zero; a quotient that underflowed to 0 gives 2^-126.
  u32[0] = Math.max((u32[0] + 0x7fffff) & 0x7f800000, 0x00800000);
  return f32[0];
}

/**
 * Int8 attention (qk='int8'): x = code · scale with code = round(x · fp8Reciprocal(scale)) (fp32 product, ties to
 * even, clamped to ±127) and scale = amax/127 in fp32 (1 where amax is 0), over groups of `group`
 * consecutive tokens of a head: 1 for Q (a scale per row, a per-row factor of the softmax: free) and
 * QK_BLOCK for K (a per-tile factor, as e4m3's). The kernel computes Σ code_q·code_k exactly in
 * int32 and applies both scales to the sum; bench/attention-qk-recipes.ts ("int8 Q row") measured
 * this recipe 2-4x closer to full precision than the e4m3 one.
 */
export const S8_MAX = 127;
/** Whether Q and K are 8-bit codes with fp32 scales (e4m3: qk='fp8', s8: qk='int8'; packed so by AttentionPack). */
export const codedQK = (qk: string) => qk === 'fp8' || qk === 'int8';
/**
 * An attention node's Q·Kᵀ recipe, checked: qk ('bf16' | 'fp8' | 'int8'). K's scales are one per (head, 128-token block)
 * (QK_BLOCK) with either 8-bit code; the kScale attribute (kScale='token': K's s8 scales per token, measured slower,
 * bench/RESULTS.md "Session 11") is no longer supported and is refused.
 */
export function qkRecipe(node: Node, where: string): 'bf16' | 'fp8' | 'int8' {
  const qk = attrString(node, 'qk', 'bf16');
  if (qk !== 'bf16' && qk !== 'fp8' && qk !== 'int8') fail(where, "qk of 'bf16', 'fp8' or 'int8'", `'${qk}'`);
  if (node.attrs.kScale !== undefined) fail(where, "no kScale attribute (kScale is no longer supported: K's scales are one per 128-token block)", `kScale='${node.attrs.kScale}'`);
  return qk;
}
/** The s8 code of x with the reciprocal r of its scale (fp8Reciprocal): round(fp32(x · r)), ties to even, clamped to ±127. */
export const s8Code = (x: number, r: number) => Math.max(-S8_MAX, Math.min(S8_MAX, rne(Math.fround(x * r))));
/** The s8 scale of a group's amax, amaxScale(amax, 127) (1 where the quotient is not positive, as fp8Scale); the pack's dc_s8_scale. */
export const s8Scale = (amax: number) => amaxScale(amax, S8_MAX);
export function quantizeS8(x: Float32Array, d: Dims, group: number): void {
  for (let bh = 0; bh < d.b * d.h; bh++) {
    for (let t0 = 0; t0 < d.s; t0 += group) {
      const start = (bh * d.s + t0) * d.d, end = (bh * d.s + Math.min(t0 + group, d.s)) * d.d;
      let amax = 0;
      for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(x[i]));
      const scale = s8Scale(amax);
      const r = fp8Reciprocal(scale);
      for (let i = start; i < end; i++) x[i] = s8Code(x[i], r) * scale;
    }
  }
}

/** An attention node's P·V recipe, checked: 'bf16'; 'fp8' (with qk='fp8': P and V in e4m3); 'int8' (with qk='int8':
 * P in u8, V in s8). */
export type PvRecipe = 'bf16' | 'fp8' | 'int8';
export function pvRecipe(node: Node, where: string): PvRecipe {
  const pv = attrString(node, 'pv', 'bf16');
  if (pv !== 'bf16' && pv !== 'fp8' && pv !== 'int8') fail(where, "pv of 'bf16', 'fp8' or 'int8'", `'${pv}'`);
  const qk = attrString(node, 'qk', 'bf16');
  if (pv !== 'bf16' && qk !== pv) fail(where, `pv='${pv}' with qk='${pv}'`, `qk='${qk}'`);
  return pv;
}
/** Whether P·V runs on 8-bit codes (pv 'fp8' or 'int8'): V packed as Vt8 with channel scales. */
export const codedPV = (pv: string | undefined) => pv === 'fp8' || pv === 'int8';

/** pv='fp8' / 'int8': V as the kernel reads it, bf16 then e4m3 (fp8Scale of its amax) or s8 (s8Scale, s8Code) with one
 * scale per (head, channel) over the sequence; returns the scales, [B·H, D]. `keep(b, t)` (a key mask): keys it
 * rejects count as 0 (no part in the scale, code 0), so masked rows' values cannot coarsen the others'.
 * `amax(bh, c)`: the channels' amax given (AttentionPack vquant=1: its GEMMs' amax outputs) instead of
 * reduced here. `values` (x's layout): receives the codes' values themselves, before the scale (Vt8's codes). */
export function quantizeChannels(x: Float32Array, d: Dims, keep?: (b: number, t: number) => boolean, given?: (bh: number, c: number) => number, values?: Float32Array, pv: 'fp8' | 'int8' = 'fp8'): Float32Array {
  const scales = new Float32Array(d.b * d.h * d.d);
  for (let bh = 0; bh < d.b * d.h; bh++) {
    const b = Math.floor(bh / d.h);
    if (keep) for (let t = 0; t < d.s; t++) if (!keep(b, t)) x.fill(0, (bh * d.s + t) * d.d, (bh * d.s + t + 1) * d.d);
    for (let c = 0; c < d.d; c++) {
      let amax = given ? given(bh, c) : 0;
      if (!given) for (let t = 0; t < d.s; t++) amax = Math.max(amax, Math.abs(roundToBf16(x[(bh * d.s + t) * d.d + c])));
      const scale = pv === 'int8' ? s8Scale(amax) : fp8Scale(amax);
      scales[bh * d.d + c] = scale;
      const r = fp8Reciprocal(scale);
      for (let t = 0; t < d.s; t++) {
        const i = (bh * d.s + t) * d.d + c;
        const q = pv === 'int8' ? s8Code(roundToBf16(x[i]), r) : roundE4M3Scaled(roundToBf16(x[i]), r);
        if (values) values[i] = q;
        x[i] = q * scale;
      }
    }
  }
  return scales;
}

/**
 * 8-bit P·V (pv 'fp8' / 'int8') with a mask: whether a mask value drops its key from V (bool false; additive -inf or below
 * -1e37, where the kernels clamp huge negatives: templates/attention.cuh dca_mask_log2). Such a key
 * has P = 0 in every row that keeps any other key.
 */
export const maskDrops = (value: number, bool: boolean) => (bool ? value === 0 : value < -1e37);

/** A key mask's shape: one that broadcasts over heads and queries (`[.., 1, 1, Skv]`), or an error naming `where`. */
export function checkKeyMaskShape(s: readonly number[], b: number, kv: number, where: string): void {
  const r = s.length;
  if (r > 4 || (r >= 2 && s[r - 2] !== 1) || (r >= 3 && s[r - 3] !== 1) || (r === 4 && s[0] !== 1 && s[0] !== b) || (s[r - 1] !== 1 && s[r - 1] !== kv)) {
    fail(where, `8-bit P·V with a key mask broadcast over heads and queries ([B, 1, 1, ${kv}])`, `a mask of shape [${s}]`);
  }
}

/**
 * 8-bit P·V with a mask: keep(b, t) over a key mask (one that broadcasts over heads and queries:
 * `[.., 1, 1, Skv]`), or an error naming `where`.
 */
export function keyMaskKeep(mask: Tensor, b: number, kv: number, where: string): (bi: number, t: number) => boolean {
  const s = mask.shape;
  checkKeyMaskShape(s, b, kv, where);
  const map = broadcastIndex(s, [b, 1, 1, kv]), bool = mask.dtype === 'bool';
  return (bi, t) => !maskDrops(mask.get(map[bi * kv + t]), bool);
}

/**
 * pv='fp8' / 'int8': keys per tile of the online softmax (the kernel's BN, which the rounding of P follows):
 * 192 where it divides the padded kv length (Flux.2's 4608: fewer max/rescale steps a key), else 128.
 */
export const pvTile = (seqKv: number): number => (Math.ceil(seqKv / QK_BLOCK) * QK_BLOCK) % 192 === 0 ? 192 : 128;

/** log2(255): the u8 P's exponent offset (P' = 255 at the running max). */
export const U8_P_LOG2 = Math.log2(255);

/**
 * The weights of one row's 8-bit P·V as the kernel forms them. Scores (natural units, -inf where masked) are taken in
 * tiles of `tile` keys with a running max m (log2 units); the row sum l adds P' before its coding, the product its code:
 * - pv='fp8': m the running max; P' = 2^(x - m + 8), rounded to e4m3.
 * - pv='int8': m the running max rounded up to an integer (so that the kernel rescales its s32 sums by shifts);
 *   P' = 255 · 2^(x - m) in [0, 255], rounded to f16 (the kernel's pairs, which l adds; its f16 tree's rounding is left
 *   out), then to the nearest integer (ties to even), a u8 code.
 * Tile sums are carried to the final max by 2^(m_tile - m) (the kernel's shift floors its integer sums there, at most
 * one unit of P'·V's codes a rescale, which this leaves out; a last-wave piece, compiler/codegen/attention.ts tailPieces,
 * rounds against its own running max, which this leaves out too). Overwrites `scores` with w such that out = Σ_t w_t·V_t.
 */
export function pvWeights(scores: Float64Array, n: number, tile: number, pv: 'fp8' | 'int8'): void {
  const p = new Float64Array(n), scaleTo = new Float64Array(Math.ceil(n / tile));
  const u8 = pv === 'int8';
  let m = -Infinity, l = 0;
  for (let j = 0; j * tile < n; j++) {
    const t0 = j * tile, t1 = Math.min(n, t0 + tile);
    let mx = -Infinity;
    for (let t = t0; t < t1; t++) mx = Math.max(mx, scores[t] * Math.LOG2E);
    const mn = Math.max(m, u8 ? Math.ceil(mx) : mx), base = mn === -Infinity ? 0 : mn;
    const alpha = 2 ** (m - base);
    for (let k = 0; k < j; k++) scaleTo[k] *= alpha;
    scaleTo[j] = 1;
    m = mn;
    let sum = 0;
    for (let t = t0; t < t1; t++) {
      const x = u8 ? roundToF16(255 * 2 ** (scores[t] * Math.LOG2E - base)) : 2 ** (scores[t] * Math.LOG2E - base + 8);
      sum += x;
      p[t] = u8 ? rne(x) : roundE4M3(x);
    }
    l = l * alpha + sum;
  }
  for (let t = 0; t < n; t++) scores[t] = l > 0 ? (p[t] * scaleTo[Math.floor(t / tile)]) / l : 0;
}

const fusedAttention: OpDef = {
  infer: (c) => {
    const p = attentionPlan(c.node, (i) => (c.has(i) ? c.input(i).shape : undefined), c.where);
    qkRecipe(c.node, c.where);
    pvRecipe(c.node, c.where);
    if (c.has(0)) broadcastShapes([c.input(0).shape, [p.q.b, p.q.h, p.q.s, p.k.s]], c.where);
    return [out(outDtype(c.node, c.input(attentionInput(0, 'q')).dtype), p.outShape)];
  },
  exec: (ins, node) => {
    const where = `FusedAttention node '${node.name}'`;
    const p = attentionPlan(node, (i) => (ins[i] as Tensor | undefined)?.shape, where);
    const [Q, K, V] = (['q', 'k', 'v'] as const).map((role, r) => assemble(ins, node, role, p.layouts[r], [p.q, p.k, p.v][r]));
    const qk = qkRecipe(node, where);
    if (qk === 'fp8') {
      quantizeBlocks(Q, p.q);
      quantizeBlocks(K, p.k);
    } else if (qk === 'int8') {
      quantizeS8(Q, p.q, 1);
      quantizeS8(K, p.k, QK_BLOCK);
    }
    const pv = pvRecipe(node, where);
    const mask = optionalTensor(ins, 0);
    if (pv !== 'bf16') quantizeChannels(V, p.v, mask && keyMaskKeep(mask, p.q.b, p.k.s, where), undefined, undefined, pv);
    const maskMap = mask ? broadcastIndex(mask.shape, [p.q.b, p.q.h, p.q.s, p.k.s]) : undefined;
    const scale = attrFloat(node, 'scale', 1 / Math.sqrt(p.q.d));
    const causal = attrInt(node, 'causal', 0) === 1;
    const group = p.q.h / p.k.h;
    const y = newTensor(outDtype(node, tensorArg(ins, attentionInput(0, 'q'), node).dtype), p.outShape);
    const scores = new Float64Array(p.k.s), acc = new Float64Array(p.v.d);
    for (let b = 0; b < p.q.b; b++) for (let h = 0; h < p.q.h; h++) {
      const kh = Math.floor(h / group);
      for (let s = 0; s < p.q.s; s++) {
        const qBase = ((b * p.q.h + h) * p.q.s + s) * p.q.d;
        let max = -Infinity;
        for (let t = 0; t < p.k.s; t++) {
          const kBase = ((b * p.k.h + kh) * p.k.s + t) * p.k.d;
          let dot = 0;
          for (let i = 0; i < p.q.d; i++) dot += Q[qBase + i] * K[kBase + i];
          let sc = dot * scale;
          if (mask) {
            const m = mask.get(maskMap![((b * p.q.h + h) * p.q.s + s) * p.k.s + t]);
            sc = mask.dtype === 'bool' ? (m ? sc : -Infinity) : sc + m;
          }
          if (causal && t > s) sc = -Infinity;
          scores[t] = sc;
          if (sc > max) max = sc;
        }
        let sum = 1;
        if (pv !== 'bf16') pvWeights(scores, p.k.s, pvTile(p.k.s), pv);
        else {
          sum = 0;
          for (let t = 0; t < p.k.s; t++) { scores[t] = max === -Infinity ? 0 : Math.exp(scores[t] - max); sum += scores[t]; }
        }
        acc.fill(0);
        for (let t = 0; t < p.k.s; t++) {
          if (!scores[t]) continue;
          const w = scores[t] / sum, vBase = ((b * p.v.h + kh) * p.v.s + t) * p.v.d;
          for (let i = 0; i < p.v.d; i++) acc[i] += w * V[vBase + i];
        }
        for (let i = 0; i < p.v.d; i++) {
          const o = p.outLayout === 'bshd' ? ((b * p.q.s + s) * p.q.h + h) * p.v.d + i : ((b * p.q.h + h) * p.q.s + s) * p.v.d + i;
          y.set(o, acc[i]);
        }
      }
    }
    return [y];
  },
  flops: (node, _ins, outs) => {
    const o = outs[0].shape;
    const [b, h, sq, dv] = attrString(node, 'outLayout', 'bhsd') === 'bshd' ? [o[0], o[2], o[1], o[3]] : o;
    const skv = attrInt(node, 'kvLength', 0), d = attrInt(node, 'headDim', dv);
    return 2 * b * h * sq * skv * (d + dv);
  },
};

export const fusedOps: Record<string, OpDef> = {
  Linear: linear, Silu: silu, SwiGLU: swiglu, Modulate: modulate, RoPE: rope, FusedAttention: fusedAttention,
};
