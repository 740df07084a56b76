/**
 * FusedAttention computed from the kernels' descriptors, for chosen output rows: the prologue
 * (segments, RMSNorm, RoPE, the fp8 block rounding or int8 row/block coding of Q and K) and softmax(Q·Kᵀ·scale + mask)·V,
 * reading every input through the strided windows the descriptors bake into the kernels. Same
 * arithmetic as the reference executor (rows in fp32, dot products and softmax in fp64); the CPU
 * test checks it against lookupOp(FusedAttention).exec on the tiny fixtures, so it both validates
 * the descriptors and serves as the fp32 reference for full-size shapes, where the executor's
 * O(S²) pass over every row is too slow.
 */
import type { AttentionDescriptor, Operand, PackDescriptor } from '../../compiler/codegen/attention.ts';
import { fp8Reciprocal, fp8Scale, roundE4M3Scaled } from '../../compiler/quant/formats.ts';
import { roundToBf16 } from '../../compiler/ir/dtype.ts';
import { codedPV, codedQK, maskDrops, pvWeights, qkBlockScale, s8Code, s8Scale } from '../../compiler/ops/fused.ts';

/** Element getter of kernel input `param` of the pack (by root value name for the attention's mask). */
export type Reader = (value: string, index: number) => number;

export class AttentionReference {
  private rows = new Map<string, Float32Array>();
  private scales = new Map<string, number>();
  private channelScales = new Map<string, Float32Array>();
  private channelReciprocals = new Map<string, Float64Array>();

  constructor(readonly pack: PackDescriptor, readonly attn: AttentionDescriptor, readonly read: Reader) {}

  private at(o: Operand, index: number): number {
    return this.read(this.pack.inputs[o.param].value, o.offset + index);
  }

  /** Row t of (role, batch, head) after the prologue, fp32; Q's and K's rounded to bf16 when they are coded (qk 'fp8' or 'int8', as assemble has them). */
  private prologue(role: 'q' | 'k' | 'v', b: number, head: number, t: number): Float32Array {
    const d = this.pack.headDim;
    const seg = this.pack.segments.find((s) => s.role === role && t >= s.start && t < s.start + s.length)!;
    const tl = t - seg.start;
    const [sb, ss, sh, sd] = seg.x.strides;
    const x = new Float32Array(d);
    for (let i = 0; i < d; i++) x[i] = this.at(seg.x, b * sb + tl * ss + head * sh + i * sd);
    if (seg.norm) {
      let ms = 0;
      for (let i = 0; i < d; i++) ms += x[i] * x[i];
      const r = 1 / Math.sqrt(ms / d + this.pack.eps);
      for (let i = 0; i < d; i++) x[i] = x[i] * r * this.at(seg.norm, i * seg.norm.strides[0]);
    }
    if (seg.cos && seg.sin) {
      const src = Float32Array.from(x), h = d / 2;
      for (let i = 0; i < d; i++) {
        const rot = this.pack.rope === 'interleaved' ? (i % 2 === 0 ? -src[i + 1] : src[i - 1]) : (i < h ? -src[i + h] : src[i - h]);
        const c = this.at(seg.cos, tl * seg.cos.strides[0] + i * seg.cos.strides[1]), s = this.at(seg.sin, tl * seg.sin.strides[0] + i * seg.sin.strides[1]);
        x[i] = src[i] * c + rot * s;
      }
    }
    if (role !== 'v' && codedQK(this.pack.qk)) for (let i = 0; i < d; i++) x[i] = roundToBf16(x[i]);
    return x;
  }

  /** A row as the attention consumes it: the prologue, then e4m3 rounding per 128-token block (qk='fp8')
   * or s8 codes times a scale per Q row and per K 128-token block (qk='int8'), V in e4m3 (pv='fp8') or s8
   * (pv='int8') per (head, channel) (with a key mask, the keys it drops are 0). */
  row(role: 'q' | 'k' | 'v', b: number, head: number, t: number): Float32Array {
    const key = `${role}/${b}/${head}/${t}`;
    let x = this.rows.get(key);
    if (x) return x;
    x = this.prologue(role, b, head, t);
    if (this.pack.qk === 'fp8' && role !== 'v') {
      const block = Math.floor(t / 128), skey = `${role}/${b}/${head}/${block}`;
      let scale = this.scales.get(skey);
      if (scale === undefined) {
        let amax = 0;
        const len = role === 'q' ? this.pack.seqQ : this.pack.seqKv;
        for (let r = block * 128; r < Math.min(len, block * 128 + 128); r++) for (const v of this.prologue(role, b, head, r)) amax = Math.max(amax, Math.abs(v));
        scale = qkBlockScale(amax);
        this.scales.set(skey, scale);
      }
      const r = fp8Reciprocal(scale);  // exact: a power of two
      for (let i = 0; i < x.length; i++) x[i] = Math.fround(roundE4M3Scaled(x[i], r) * scale);
    }
    if (this.pack.qk === 'int8' && role !== 'v') {
      const { codes, scale } = this.codes(role, b, head, t);
      for (let i = 0; i < x.length; i++) x[i] = codes[i] * scale;
    }
    if (codedPV(this.attn.pv) && role === 'v') {
      // bf16 (the pack's Vt), then e4m3 or s8 with one scale per (head, channel) over the sequence.
      const scales = this.vScales(b, head);
      if (this.dropped(b, t)) x.fill(0);
      const recips = this.vReciprocals(b, head), s8 = this.attn.pv === 'int8';
      for (let i = 0; i < x.length; i++) x[i] = Math.fround((s8 ? s8Code(roundToBf16(x[i]), recips[i]) : roundE4M3Scaled(roundToBf16(x[i]), recips[i])) * scales[i]);
    }
    this.rows.set(key, x);
    return x;
  }

  /** 8-bit P·V: V's scales of kv head `head` of batch b, one per channel (Vs): bf16 amax over the kept keys / 448 (pv='fp8') or 127 (pv='int8'), 1 where 0. */
  vScales(b: number, head: number): Float32Array {
    const skey = `v/${b}/${head}`;
    let scales = this.channelScales.get(skey);
    if (!scales) {
      const amax = new Float32Array(this.pack.headDim);
      for (let r = 0; r < this.pack.seqKv; r++) if (!this.dropped(b, r)) this.prologue('v', b, head, r).forEach((v, i) => (amax[i] = Math.max(amax[i], Math.abs(roundToBf16(v)))));
      scales = amax.map(this.attn.pv === 'int8' ? s8Scale : fp8Scale);
      this.channelScales.set(skey, scales);
    }
    return scales;
  }

  /** vScales' reciprocals (fp8Reciprocal), made once a head. */
  private vReciprocals(b: number, head: number): Float64Array {
    const skey = `v/${b}/${head}`;
    let r = this.channelReciprocals.get(skey);
    if (!r) this.channelReciprocals.set(skey, (r = Float64Array.from(this.vScales(b, head), fp8Reciprocal)));
    return r;
  }

  /** 8-bit P·V with a key mask (broadcast over heads and queries): whether it drops key t of batch b. */
  private dropped(b: number, t: number): boolean {
    const m = this.attn.mask;
    if (!m) return false;
    return maskDrops(this.read(m.value, m.offset + b * m.strides[0] + t * m.strides[3]), m.bool);
  }

  /** qk='int8': the s8 codes of a row and its scale (Q: the row's own, K: its 128-token block's), as the pack writes them. */
  codes(role: 'q' | 'k', b: number, head: number, t: number): { codes: Int8Array; scale: number } {
    let scale: number;
    if (role === 'q') scale = s8Scale(this.prologue(role, b, head, t).reduce((a, v) => Math.max(a, Math.abs(v)), 0));
    else {
      const block = Math.floor(t / 128), skey = `s8/${b}/${head}/${block}`;
      scale = this.scales.get(skey) ?? 0;
      if (!scale) {
        let amax = 0;
        for (let r = block * 128; r < Math.min(this.pack.seqKv, block * 128 + 128); r++) for (const v of this.prologue(role, b, head, r)) amax = Math.max(amax, Math.abs(v));
        scale = s8Scale(amax);
        this.scales.set(skey, scale);
      }
    }
    const recip = fp8Reciprocal(scale);
    return { codes: Int8Array.from(this.prologue(role, b, head, t), (v) => s8Code(v, recip)), scale };
  }

  /** Output row (b, h, query s): D values. */
  output(b: number, h: number, s: number): Float64Array {
    const a = this.attn, d = a.headDim, hk = Math.floor(h / (a.heads / a.kvHeads));
    const q = this.row('q', b, h, s);
    const scores = new Float64Array(a.seqKv);
    let max = -Infinity;
    for (let t = 0; t < a.seqKv; t++) {
      const k = this.row('k', b, hk, t);
      let dot = 0;
      for (let i = 0; i < d; i++) dot += q[i] * k[i];
      let sc = dot * a.scale;
      if (a.mask) {
        const [mb, mh, mq, mk] = a.mask.strides;
        const m = this.read(a.mask.value, a.mask.offset + b * mb + h * mh + s * mq + t * mk);
        sc = a.mask.bool ? (m ? sc : -Infinity) : sc + m;
      }
      if (a.causal && t > s) sc = -Infinity;
      scores[t] = sc;
      if (sc > max) max = sc;
    }
    let sum = 1;
    if (a.pv === 'fp8' || a.pv === 'int8') pvWeights(scores, a.seqKv, a.bn ?? 128, a.pv); // P in e4m3 (u8) per key tile, as the kernel
    else {
      sum = 0;
      for (let t = 0; t < a.seqKv; t++) { scores[t] = max === -Infinity ? 0 : Math.exp(scores[t] - max); sum += scores[t]; }
    }
    const out = new Float64Array(d);
    for (let t = 0; t < a.seqKv; t++) {
      if (!scores[t]) continue;
      const v = this.row('v', b, hk, t), w = scores[t] / sum;
      for (let i = 0; i < d; i++) out[i] += w * v[i];
    }
    return out;
  }
}
