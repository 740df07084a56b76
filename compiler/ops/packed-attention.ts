/**
 * FusedAttention lowered for the GPU (passes/lower-attention.ts): a prologue that writes packed
 * Q/K/V in the attention kernel's tile layout, and the attention proper over the packed operands.
 *
 *   AttentionPack('', [q k v qNorm kNorm cos sin] x segments){segments layouts normEps ropeStyle qk}
 *       -> Qp, Kp, Vt (bf16)                                   qk = 'bf16'
 *       -> Qp, Kp, Vt, Qs, Ks (Q, K e4m3 + fp32 block scales)   qk = 'fp8'
 *       -> Qp, Kp, Vt, Qs, Ks (Q, K s8 + fp32 row / block scales) qk = 'int8'
 *     Inputs exactly as FusedAttention's (input 0, the mask slot, stays empty); the prologue
 *     (segments concatenated, RMSNorm, RoPE) is FusedAttention's own `assemble`.
 *   PackedAttention(mask, Qp, Kp, Vt[, Qs, Ks]){scale causal outLayout to seqQ seqKv headDim qk}
 *       -> softmax(Q·Kᵀ·scale + mask)·V, as FusedAttention (a fully masked row gives 0).
 *   AttentionQuantizeV(Vt[, mask]){seqKv pv} -> Vt8, Vs    pv='int8' (s8 V, with qk='int8'; the default) or
 *       pv='fp8' (FP8 P·V, with qk='fp8'); a key mask (the attention's, broadcast over heads and queries):
 *       keys it drops (maskDrops) are 0
 *   AttentionPack(mask or '', [q k v qNorm kNorm cos sin] x segments, vAmax x segments){... qk='fp8' vquant=1 | qk='int8' vquant=1 pv='int8'}
 *       -> Qp, Kp, Vt8, Qs, Ks, Vs: the pack and AttentionQuantizeV in one (passes/fuse-vquant.ts), V's
 *     channel amax given: vAmax_i fp32 [B, Hkv·D] of segment i's V (its GEMM's amax output, QLinear
 *     attribute amax), Vs = max over the segments / 448 (/ 127 with pv='int8'; 1 where 0); the keys the mask drops are 0.
 *   PackedAttention(mask, Qp, Kp, Vt8, Qs, Ks, Vs){... qk='fp8' pv='fp8' | qk='int8' pv='int8'}
 *       -> the same with P and V in e4m3 (u8 P, s8 V), as FusedAttention's pv='fp8' ('int8') computes it.
 *
 * Packed layout. Sequences are padded with zeros to a multiple of 128 tokens (PACK_ROWS) and head
 * dims to DP (64 or 128, bf16) or 128 (e4m3). Every operand is a stack of K-major tiles whose rows
 * are 128 bytes: 64 bf16 or 128 e4m3 values, stored with the 128-byte swizzle of the Hopper tensor
 * cores (16-byte chunk c of row r sits at chunk c ^ (r mod 8)), so one bulk copy of N rows lands
 * in shared memory exactly as wgmma reads it:
 *   Qp bf16 [B, H,   DP/64, Sq', 64]      row = token, 64 head-dim values per K-block
 *   Kp bf16 [B, Hkv, DP/64, Skv', 64]
 *   Vt bf16 [B, Hkv, Skv'/64, DP, 64]      V transposed: row = head-dim index, 64 tokens per block
 *   Qp e4m3 [B, H, Sq', 128], Qs fp32 [B, H, Sq'/128]   (likewise Kp, Ks): value = code · scale,
 *   scale = qkBlockScale(amax) of each (head, 128-token block), FusedAttention's qk='fp8' recipe.
 *   Qp s8 [B, H, Sq', 128], Qs fp32 [B, H, Sq']  (one scale per token; padded rows 1),
 *   Kp s8 [B, Hkv, Skv', 128], Ks fp32 [B, Hkv, Skv'/128]: value = code · scale, scale = amax/127,
 *   FusedAttention's qk='int8' recipe (quantizeS8); the rows laid out as e4m3's.
 *   Vt8 e4m3 [B, Hkv, Skv'/64, DP, 64], Vs fp32 [B, Hkv, DP]  V transposed, 64 keys to a 64-byte
 *   row with the 64-byte swizzle (16-byte chunk c of row r at c ^ ((r / 2) mod 4): swizzled64), so a
 *   key tile of 128 or 192 is whole blocks; value = code · Vs[channel] (amax/448 over the kept
 *   sequence); byte l of each 16-byte chunk holds key vt8Key(l) of the chunk's 16, the order the
 *   kernel's e4m3 P registers take (attention.cu.njk). pv='int8': Vt8 s8, the same layout, value = code ·
 *   Vs[channel] (amax/127, s8Scale; s8Code).
 * The shapes above are the memory images; `swizzled` gives an element's flat position in a tile.
 *
 * Head dims the flash kernels do not take (above 128: the VAE decoders' mid-block attention, 512
 * and 384) are lowered to two GEMMs around a row softmax instead, with this GEMM of two activations:
 *   ActMatMul(a, b){transB alpha to shape}
 *       -> Y = alpha · A · op(B) in dtype `to` (default a's), accumulated in float64 here (fp32 on
 *          the GPU, cuBLASLt). A is read as a [M, K] matrix (K its last dim, every leading dim
 *          folded into M); B as [N, K] with transB=1 (K its last dim), else [K, N] (N its last dim).
 *          Y has shape `shape` (M·N elements; default [...a's leading dims, N]).
 */
import { fail } from '../errors.ts';
import { type DType, dtypeFromOnnx, roundToBf16 } from '../ir/dtype.ts';
import type { Node } from '../ir/graph.ts';
import type { Tensor } from '../ir/tensor.ts';
import { fp8Reciprocal, roundE4M3Scaled } from '../quant/formats.ts';
import { roundTo } from './elementwise.ts';
import { QK_BLOCK, assemble, attentionPlan, checkKeyMaskShape, codedPV, codedQK, pvRecipe, pvTile, pvWeights, keyMaskKeep, qkBlockScale, qkRecipe, quantizeChannels, s8Code, s8Scale } from './fused.ts';
import { type OpDef, type RuntimeValue, attrFloat, attrInt, attrString, broadcastIndex, broadcastShapes, newTensor, optionalTensor, out, tensorArg } from './op.ts';

/** Token padding of every packed operand: the attention kernel's tile height and the fp8 block. */
export const PACK_ROWS = QK_BLOCK;
/** Padded head dim: 64 or 128 in bf16; 8-bit rows are always 128 values (one 128-byte row). */
export const packedHeadDim = (d: number, qk: string) => (codedQK(qk) || d > 64 ? 128 : 64);
export const padRows = (s: number) => Math.ceil(s / PACK_ROWS) * PACK_ROWS;

/** Flat position of element (r, c) in a tile of 128-byte rows of `width` values (64 bf16, 128 e4m3). */
export function swizzled(r: number, c: number, width: number): number {
  const chunk = width / 8;
  return r * width + ((Math.floor(c / chunk) ^ (r % 8)) * chunk) + (c % chunk);
}

export interface PackedShapes { b: number; h: number; hkv: number; sq: number; skv: number; d: number; dp: number; qk: string }

/** Output types of AttentionPack for the given logical sizes. */
export function packTypes(p: PackedShapes): { dtype: DType; shape: number[] }[] {
  const sq = padRows(p.sq), skv = padRows(p.skv);
  const vt = { dtype: 'bfloat16' as DType, shape: [p.b, p.hkv, skv / 64, p.dp, 64] };
  if (p.qk === 'fp8') {
    return [
      { dtype: 'float8e4m3fn', shape: [p.b, p.h, sq, 128] }, { dtype: 'float8e4m3fn', shape: [p.b, p.hkv, skv, 128] }, vt,
      { dtype: 'float32', shape: [p.b, p.h, sq / PACK_ROWS] }, { dtype: 'float32', shape: [p.b, p.hkv, skv / PACK_ROWS] },
    ];
  }
  if (p.qk === 'int8') {
    return [
      { dtype: 'int8', shape: [p.b, p.h, sq, 128] }, { dtype: 'int8', shape: [p.b, p.hkv, skv, 128] }, vt,
      { dtype: 'float32', shape: [p.b, p.h, sq] }, { dtype: 'float32', shape: [p.b, p.hkv, skv / PACK_ROWS] },
    ];
  }
  return [{ dtype: 'bfloat16', shape: [p.b, p.h, p.dp / 64, sq, 64] }, { dtype: 'bfloat16', shape: [p.b, p.hkv, p.dp / 64, skv, 64] }, vt];
}

/** AttentionPack vquant=1: its outputs (Vt8 and Vs in place of Vt), after checking its mask and amax inputs. */
function vquantPackTypes(node: Node, p: PackedShapes, typeOf: (i: number) => { dtype: DType; shape: readonly number[] } | undefined, where: string): { dtype: DType; shape: number[] }[] {
  const pv = vquantPv(node, where);
  const types = packTypes(p), segments = attrInt(node, 'segments', 1), [vt8, vs] = vquantTypes(types[2].shape, pv);
  if (p.qk !== pv) fail(where, "vquant=1 with qk='fp8' (pv='fp8') or qk='int8' (pv='int8')", `qk='${p.qk}', pv='${pv}'`);
  for (let s = 0; s < segments; s++) {
    const a = typeOf(1 + 7 * segments + s);
    if (a?.dtype !== 'float32' || a.shape.join() !== [p.b, p.hkv * p.d].join()) fail(where, `segment ${s}'s V amax, float32 [${p.b}, ${p.hkv * p.d}]`, a ? `${a.dtype}[${a.shape}]` : 'none');
  }
  const mask = typeOf(0)?.shape;
  if (mask) checkKeyMaskShape(mask, p.b, p.skv, where);
  types.splice(2, 1, vt8);
  return [...types, vs];
}

function packShapes(node: Node, shapeOf: (i: number) => readonly number[] | undefined, where: string): PackedShapes {
  const p = attentionPlan(node, shapeOf, where);
  const qk = qkRecipe(node, where);
  if (![16, 32, 64, 128].includes(p.q.d) || p.v.d !== p.q.d) fail(where, 'head dims of 16, 32, 64 or 128, the same for q, k and v', `q ${p.q.d}, v ${p.v.d}`);
  return { b: p.q.b, h: p.q.h, hkv: p.k.h, sq: p.q.s, skv: p.k.s, d: p.q.d, dp: packedHeadDim(p.q.d, qk), qk };
}

/** Writes [B, Hx, S, D] float values into a bf16 K-major tile stack [B, Hx, DP/64, S', 64]. */
function packRows(x: Float32Array, bh: number, s: number, d: number, dp: number): Tensor {
  const sp = padRows(s);
  const t = newTensor('bfloat16', [bh, dp / 64, sp, 64]);
  for (let i = 0; i < bh; i++) for (let r = 0; r < s; r++) for (let c = 0; c < d; c++) {
    t.set((i * (dp / 64) + Math.floor(c / 64)) * sp * 64 + swizzled(r, c % 64, 64), roundToBf16(x[(i * s + r) * d + c]));
  }
  return t;
}

/** V transposed: [B, Hx, S'/64, DP, 64], row = head-dim index, 64 tokens per block. */
function packTransposed(x: Float32Array, bh: number, s: number, d: number, dp: number): Tensor {
  const sp = padRows(s);
  const t = newTensor('bfloat16', [bh, sp / 64, dp, 64]);
  for (let i = 0; i < bh; i++) for (let r = 0; r < s; r++) for (let c = 0; c < d; c++) {
    t.set((i * (sp / 64) + Math.floor(r / 64)) * dp * 64 + swizzled(c, r % 64, 64), roundToBf16(x[(i * s + r) * d + c]));
  }
  return t;
}

/**
 * Scaled 8-bit rows of 128 values and one scale per `group` tokens of a head: FusedAttention's
 * qk='fp8' (e4m3, qkBlockScale: a power of two, one scale per 128-token block) and qk='int8' (s8, s8Scale, a scale per
 * Q row or per K block); codes from the value and fp8Reciprocal(scale) (exact for e4m3's powers of two).
 */
const SCALED = {
  e4m3: { dtype: 'float8e4m3fn', scale: qkBlockScale, code: roundE4M3Scaled },
  s8: { dtype: 'int8', scale: s8Scale, code: s8Code },
} as const;
function packScaled(x: Float32Array, bh: number, s: number, d: number, format: keyof typeof SCALED, group: number): [Tensor, Tensor] {
  const f = SCALED[format];
  const sp = padRows(s);
  const q = newTensor(f.dtype, [bh, sp, 128]), scales = newTensor('float32', [bh, sp / group]);
  for (let i = 0; i < bh; i++) for (let g = 0; g < sp / group; g++) {
    const r0 = g * group, r1 = Math.min(r0 + group, s);
    let amax = 0;
    for (let r = r0; r < r1; r++) for (let c = 0; c < d; c++) amax = Math.max(amax, Math.abs(x[(i * s + r) * d + c]));
    const scale = f.scale(amax), recip = fp8Reciprocal(scale);
    scales.set(i * (sp / group) + g, scale);
    for (let r = r0; r < r1; r++) for (let c = 0; c < d; c++) q.set(i * sp * 128 + swizzled(r, c, 128), f.code(x[(i * s + r) * d + c], recip));
  }
  return [q, scales];
}

/** Flat position of element (r, c) in a tile of 64-byte rows of e4m3 with the 64-byte swizzle. */
export const swizzled64 = (r: number, c: number) => r * 64 + (((c >> 4) ^ ((r >> 1) & 3)) << 4) + (c & 15);

/** Key (0..15) of a 16-key chunk held at byte l of a Vt8 chunk, and its inverse. */
export const vt8Key = (l: number) => 2 * (l >> 2) + (l & 1) + 8 * ((l >> 1) & 1);
export const vt8Byte = (p: number) => 4 * ((p & 7) >> 1) + (p & 1) + 2 * (p >> 3);

/** Output types of AttentionQuantizeV for a packed Vt of shape [B, Hkv, S'/64, DP, 64]: Vt8 in e4m3 (pv='fp8') or s8 (pv='int8'), Vs. */
export function vquantTypes(vt: readonly number[], pv: 'fp8' | 'int8' = 'fp8'): { dtype: DType; shape: number[] }[] {
  const [b, hkv, blocks, dp] = vt;
  return [{ dtype: pv === 'int8' ? 'int8' : 'float8e4m3fn', shape: [b, hkv, blocks, dp, 64] }, { dtype: 'float32', shape: [b, hkv, dp] }];
}

/** Position of (key t, channel c) of head bh in Vt8. */
const vt8Index = (bh: number, sp: number, dp: number, t: number, c: number) =>
  (bh * (sp / 64) + Math.floor(t / 64)) * dp * 64 + swizzled64(c, (t % 64) - (t % 16) + vt8Byte(t % 16));

const attentionQuantizeV: OpDef = {
  infer: (c) => {
    const s = c.input(0).shape;
    if (s.length !== 5 || s[4] !== 64 || s[2] % 2 || c.input(0).dtype !== 'bfloat16') fail(c.where, 'a packed bf16 Vt [B, Hkv, S/64, DP, 64] of whole 128-token tiles', `[${s}]`);
    if (c.has(1)) {
      const kv = attrInt(c.node, 'seqKv', 0);
      if (kv <= 0 || kv > s[2] * 64) fail(c.where, `a seqKv attribute of 1..${s[2] * 64} keys with a mask`, String(c.node.attrs.seqKv));
      broadcastShapes([c.input(1).shape, [s[0], 1, 1, kv]], c.where);
    }
    return vquantTypes(s, vquantPv(c.node, c.where)).map((t) => out(t.dtype, t.shape));
  },
  exec: (ins, node) => {
    const where = `AttentionQuantizeV node '${node.name}'`;
    const vt = tensorArg(ins, 0, node), mask = optionalTensor(ins, 1), pv = vquantPv(node, where);
    const [b, hkv, blocks, dp] = vt.shape, sp = blocks * 64, bh = b * hkv;
    const x = unpackTransposed(vt, bh, sp, dp, dp);
    // A key mask: keys past seqKv are padding (0 already), keys it drops count as 0.
    const kv = attrInt(node, 'seqKv', sp), keep = mask && keyMaskKeep(mask, b, kv, where);
    const values = new Float32Array(x.length);
    const scales = quantizeChannels(x, { b, h: hkv, s: sp, d: dp }, keep && ((bi, t) => t >= kv || keep(bi, t)), undefined, values, pv);
    return vt8Tensors(values, scales, vt.shape, pv);
  },
};

/** AttentionQuantizeV's code: pv 'fp8' (e4m3, the default) or 'int8' (s8). */
export function vquantPv(node: Node, where: string): 'fp8' | 'int8' {
  const pv = attrString(node, 'pv', 'fp8');
  if (pv !== 'fp8' && pv !== 'int8') fail(where, "pv of 'fp8' or 'int8'", `'${pv}'`);
  return pv;
}

/** Vt8 and Vs of a packed Vt's shape from V's code values [BH, S', DP] (quantizeChannels' `values`) and its scales. */
function vt8Tensors(values: Float32Array, scales: Float32Array, vtShape: readonly number[], pv: 'fp8' | 'int8' = 'fp8'): [Tensor, Tensor] {
  const [b, hkv, blocks, dp] = vtShape, sp = blocks * 64;
  const [t8, ts] = vquantTypes(vtShape, pv);
  const v8 = newTensor(t8.dtype, t8.shape), vs = newTensor(ts.dtype, ts.shape);
  for (let i = 0; i < b * hkv; i++) for (let c = 0; c < dp; c++) {
    vs.set(i * dp + c, scales[i * dp + c]);
    for (let t = 0; t < sp; t++) v8.set(vt8Index(i, sp, dp, t, c), values[(i * sp + t) * dp + c]);
  }
  return [v8, vs];
}

/** Vt8 and Vs of V [BH, S, D] with the channel amax given (vAmax inputs, one per segment, max over them) and the dropped keys 0. */
function quantizeVGiven(V: Float32Array, ins: readonly (RuntimeValue | undefined)[], node: Node, p: PackedShapes, where: string): [Tensor, Tensor] {
  const segments = attrInt(node, 'segments', 1), mask = optionalTensor(ins, 0), sp = padRows(p.skv), hd = p.hkv * p.d, bh = p.b * p.hkv;
  // V [BH, S', DP]: the padded keys and channels 0 (channels past the head dim: amax 0, scale 1).
  const x = new Float32Array(bh * sp * p.dp);
  for (let i = 0; i < bh; i++) for (let t = 0; t < p.skv; t++) for (let c = 0; c < p.d; c++) x[(i * sp + t) * p.dp + c] = V[(i * p.skv + t) * p.d + c];
  const keep = mask && keyMaskKeep(mask, p.b, p.skv, where);
  const amax = (i: number, c: number) => {
    let m = 0;
    if (c < p.d) for (let s = 0; s < segments; s++) m = Math.max(m, tensorArg(ins, 1 + 7 * segments + s, node).get(Math.floor(i / p.hkv) * hd + (i % p.hkv) * p.d + c));
    return m;
  };
  const values = new Float32Array(x.length);
  const pv = vquantPv(node, where);
  const scales = quantizeChannels(x, { b: p.b, h: p.hkv, s: sp, d: p.dp }, keep && ((bi, t) => t >= p.skv || keep(bi, t)), amax, values, pv);
  return vt8Tensors(values, scales, packTypes(p)[2].shape, pv);
}

const attentionPack: OpDef = {
  infer: (c) => {
    const p = packShapes(c.node, (i) => (c.has(i) ? c.input(i).shape : undefined), c.where);
    if (!attrInt(c.node, 'vquant', 0) && c.node.attrs.pv !== undefined) fail(c.where, 'pv only with vquant=1 (the V it codes)', `pv='${c.node.attrs.pv}', vquant=0`);
    const types = attrInt(c.node, 'vquant', 0) ? vquantPackTypes(c.node, p, (i) => (c.has(i) ? c.input(i) : undefined), c.where) : packTypes(p);
    return types.map((t) => out(t.dtype, t.shape));
  },
  exec: (ins, node) => {
    const where = `AttentionPack node '${node.name}'`;
    const plan = attentionPlan(node, (i) => (ins[i] as Tensor | undefined)?.shape, where);
    const p = packShapes(node, (i) => (ins[i] as Tensor | undefined)?.shape, where);
    const [Q, K, V] = (['q', 'k', 'v'] as const).map((role, r) => assemble(ins, node, role, plan.layouts[r], [plan.q, plan.k, plan.v][r]));
    const vt = packTransposed(V, p.b * p.hkv, p.skv, p.d, p.dp);
    const shaped = (t: Tensor, i: number) => t.reshape(packTypes(p)[i].shape);
    if (codedQK(p.qk)) {
      const int8 = p.qk === 'int8';
      const [qp, qs] = packScaled(Q, p.b * p.h, p.sq, p.d, int8 ? 's8' : 'e4m3', int8 ? 1 : PACK_ROWS);
      const [kp, ks] = packScaled(K, p.b * p.hkv, p.skv, p.d, int8 ? 's8' : 'e4m3', PACK_ROWS);
      if (attrInt(node, 'vquant', 0)) {
        const [v8, vs] = quantizeVGiven(V, ins, node, p, where);
        return [shaped(qp, 0), shaped(kp, 1), v8, shaped(qs, 3), shaped(ks, 4), vs];
      }
      return [qp, kp, vt, qs, ks].map(shaped);
    }
    return [packRows(Q, p.b * p.h, p.sq, p.d, p.dp), packRows(K, p.b * p.hkv, p.skv, p.d, p.dp), vt].map(shaped);
  },
};

// ---- PackedAttention --------------------------------------------------------------------------------

interface AttentionDims { b: number; h: number; hkv: number; sq: number; skv: number; d: number; dp: number; qk: string; pv: 'bf16' | 'fp8' | 'int8'; outLayout: string; outShape: number[]; to: DType }

function attentionDims(node: Node, shapeOf: (i: number) => readonly number[] | undefined, where: string): AttentionDims {
  const qk = qkRecipe(node, where);
  const sq = attrInt(node, 'seqQ', 0), skv = attrInt(node, 'seqKv', 0), d = attrInt(node, 'headDim', 0);
  const [q, k, v] = [1, 2, 3].map(shapeOf);
  if (!q || !k || !v || !sq || !skv || !d) fail(where, 'packed Q, K, V and the seqQ/seqKv/headDim attributes', 'missing');
  const dp = packedHeadDim(d, qk);
  const [b, h, hkv] = [q[0], q[1], k[1]];
  const pv = pvRecipe(node, where);
  const expect = packTypes({ b, h, hkv, sq, skv, d, dp, qk });
  if (pv !== 'bf16') {
    const [vt8, vs] = vquantTypes(expect[2].shape, pv);
    expect.splice(2, 1, vt8), expect.push(vs);
  }
  [q, k, v, shapeOf(4), shapeOf(5), shapeOf(6)].slice(0, expect.length).forEach((s, i) => {
    if (!s || s.join() !== expect[i].shape.join()) fail(where, `packed operand ${i + 1} of shape [${expect[i].shape}]`, s ? `[${s}]` : 'none');
  });
  if (h % hkv) fail(where, 'query heads a multiple of kv heads', `${h} and ${hkv}`);
  const outLayout = attrString(node, 'outLayout', 'bhsd');
  const to = dtypeFromOnnx(attrInt(node, 'to', 16)) ?? fail(where, 'an output dtype code', String(node.attrs.to));
  return { b, h, hkv, sq, skv, d, dp, qk, pv, outLayout, to, outShape: outLayout === 'bshd' ? [b, sq, h, d] : [b, h, sq, d] };
}

/** Decodes a packed operand into [BH, S, D] float32 (8-bit codes times their scale: one per `group` rows). */
function unpackRows(t: Tensor, bh: number, s: number, d: number, dp: number, scales?: Tensor, group = PACK_ROWS): Float32Array {
  const sp = padRows(s), x = new Float32Array(bh * s * d);
  for (let i = 0; i < bh; i++) for (let r = 0; r < s; r++) for (let c = 0; c < d; c++) {
    x[(i * s + r) * d + c] = scales
      ? Math.fround(t.get(i * sp * 128 + swizzled(r, c, 128)) * scales.get(i * (sp / group) + Math.floor(r / group)))
      : t.get((i * (dp / 64) + Math.floor(c / 64)) * sp * 64 + swizzled(r, c % 64, 64));
  }
  return x;
}

function unpackTransposed(t: Tensor, bh: number, s: number, d: number, dp: number): Float32Array {
  const sp = padRows(s), x = new Float32Array(bh * s * d);
  for (let i = 0; i < bh; i++) for (let r = 0; r < s; r++) for (let c = 0; c < d; c++) {
    x[(i * s + r) * d + c] = t.get((i * (sp / 64) + Math.floor(r / 64)) * dp * 64 + swizzled(c, r % 64, 64));
  }
  return x;
}

/** Decodes Vt8 and its channel scales into [BH, S, D] float32. */
function unpackVt8(t: Tensor, scales: Tensor, bh: number, s: number, d: number, dp: number): Float32Array {
  const sp = padRows(s), x = new Float32Array(bh * s * d);
  for (let i = 0; i < bh; i++) for (let r = 0; r < s; r++) for (let c = 0; c < d; c++) {
    x[(i * s + r) * d + c] = Math.fround(t.get(vt8Index(i, sp, dp, r, c)) * scales.get(i * dp + c));
  }
  return x;
}

const packedAttention: OpDef = {
  infer: (c) => {
    const a = attentionDims(c.node, (i) => (c.has(i) ? c.input(i).shape : undefined), c.where);
    if (c.has(0)) broadcastShapes([c.input(0).shape, [a.b, a.h, a.sq, a.skv]], c.where);
    return [out(a.to, a.outShape)];
  },
  exec: (ins: readonly (RuntimeValue | undefined)[], node) => {
    const a = attentionDims(node, (i) => (ins[i] as Tensor | undefined)?.shape, `PackedAttention node '${node.name}'`);
    const coded = codedQK(a.qk);
    const Q = unpackRows(tensorArg(ins, 1, node), a.b * a.h, a.sq, a.d, a.dp, coded ? tensorArg(ins, 4, node) : undefined, a.qk === 'int8' ? 1 : PACK_ROWS);
    const K = unpackRows(tensorArg(ins, 2, node), a.b * a.hkv, a.skv, a.d, a.dp, coded ? tensorArg(ins, 5, node) : undefined);
    const V = codedPV(a.pv) ? unpackVt8(tensorArg(ins, 3, node), tensorArg(ins, 6, node), a.b * a.hkv, a.skv, a.d, a.dp) : unpackTransposed(tensorArg(ins, 3, node), a.b * a.hkv, a.skv, a.d, a.dp);
    const mask = optionalTensor(ins, 0);
    const maskMap = mask ? broadcastIndex(mask.shape, [a.b, a.h, a.sq, a.skv]) : undefined;
    const scale = attrFloat(node, 'scale', 1 / Math.sqrt(a.d));
    const causal = attrInt(node, 'causal', 0) === 1;
    const group = a.h / a.hkv;
    const y = newTensor(a.to, a.outShape);
    const scores = new Float64Array(a.skv), acc = new Float64Array(a.d);
    for (let b = 0; b < a.b; b++) for (let h = 0; h < a.h; h++) {
      const kv = b * a.hkv + Math.floor(h / group);
      for (let s = 0; s < a.sq; s++) {
        const qBase = ((b * a.h + h) * a.sq + s) * a.d;
        let max = -Infinity;
        for (let t = 0; t < a.skv; t++) {
          let dot = 0;
          for (let i = 0; i < a.d; i++) dot += Q[qBase + i] * K[(kv * a.skv + t) * a.d + i];
          let sc = dot * scale;
          if (mask) {
            const m = mask.get(maskMap![((b * a.h + h) * a.sq + s) * a.skv + t]);
            sc = mask.dtype === 'bool' ? (m ? sc : -Infinity) : sc + m;
          }
          if (causal && t > s) sc = -Infinity;
          scores[t] = sc;
          if (sc > max) max = sc;
        }
        let sum = 1;
        if (a.pv !== 'bf16') pvWeights(scores, a.skv, pvTile(a.skv), a.pv);
        else {
          sum = 0;
          for (let t = 0; t < a.skv; t++) { scores[t] = max === -Infinity ? 0 : Math.exp(scores[t] - max); sum += scores[t]; }
        }
        acc.fill(0);
        for (let t = 0; t < a.skv; t++) {
          if (!scores[t]) continue;
          for (let i = 0; i < a.d; i++) acc[i] += (scores[t] / sum) * V[(kv * a.skv + t) * a.d + i];
        }
        for (let i = 0; i < a.d; i++) {
          y.set(a.outLayout === 'bshd' ? ((b * a.sq + s) * a.h + h) * a.d + i : qBase + i, roundTo(a.to, acc[i]));
        }
      }
    }
    return [y];
  },
  flops: (node, [q]) => 4 * q.shape[0] * q.shape[1] * attrInt(node, 'seqQ', 0) * attrInt(node, 'seqKv', 0) * attrInt(node, 'headDim', 0),
};

// ---- ActMatMul ------------------------------------------------------------------------------------

/** M, N, K and the output shape of an ActMatMul over inputs of these shapes. */
export function actMatMulDims(node: Node, a: readonly number[], b: readonly number[], where: string): { m: number; n: number; k: number; shape: number[] } {
  const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);
  if (!a.length || !b.length) fail(where, 'operands of rank >= 1', `[${a}] and [${b}]`);
  const transB = attrInt(node, 'transB', 0) === 1;
  const k = a.at(-1)!, m = size(a) / k;
  const n = transB ? size(b) / b.at(-1)! : b.at(-1)!;
  const kb = transB ? b.at(-1)! : size(b) / b.at(-1)!;
  if (kb !== k) fail(where, `B holding ${transB ? '[N, K]' : '[K, N]'} with K = ${k} (A [${a}])`, `[${b}]`);
  const given = node.attrs.shape as readonly number[] | undefined;
  const shape = given ? [...given] : [...a.slice(0, -1), n];
  if (size(shape) !== m * n) fail(where, `an output shape of ${m}x${n} elements`, `[${shape}]`);
  return { m, n, k, shape };
}

const actMatMul: OpDef = {
  infer: (c) => {
    const { shape } = actMatMulDims(c.node, c.input(0).shape, c.input(1).shape, c.where);
    const to = c.node.attrs.to === undefined ? c.input(0).dtype : dtypeFromOnnx(c.node.attrs.to as number) ?? fail(c.where, 'an output dtype code', String(c.node.attrs.to));
    return [out(to, shape)];
  },
  exec: (ins, node) => {
    const a = tensorArg(ins, 0, node), b = tensorArg(ins, 1, node);
    const { m, n, k, shape } = actMatMulDims(node, a.shape, b.shape, `ActMatMul node '${node.name}'`);
    const transB = attrInt(node, 'transB', 0) === 1, alpha = attrFloat(node, 'alpha', 1);
    const to = node.attrs.to === undefined ? a.dtype : dtypeFromOnnx(node.attrs.to as number)!;
    const A = a.toFloat32(), B = b.toFloat32();
    const y = newTensor(to, shape);
    const acc = new Float64Array(n);
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      if (transB) {
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let kk = 0; kk < k; kk++) dot += A[i * k + kk] * B[j * k + kk];
          acc[j] = dot;
        }
      } else {
        for (let kk = 0; kk < k; kk++) {
          const x = A[i * k + kk];
          if (x !== 0) for (let j = 0; j < n; j++) acc[j] += x * B[kk * n + j];
        }
      }
      for (let j = 0; j < n; j++) y.set(i * n + j, roundTo(to, alpha * acc[j]));
    }
    return [y];
  },
  flops: (node, [a, b]) => {
    const { m, n, k } = actMatMulDims(node, a.shape, b.shape, 'ActMatMul');
    return 2 * m * n * k;
  },
};

export const packedAttentionOps: Record<string, OpDef> = { AttentionPack: attentionPack, AttentionQuantizeV: attentionQuantizeV, PackedAttention: packedAttention, ActMatMul: actMatMul };
