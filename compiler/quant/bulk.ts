/**
 * Fast typed-array quantizers (weights at compile time, activations in the reference executor),
 * exactly equal to the scalar codecs of formats.ts.
 *
 * Arithmetic is the kernels' fp32 arithmetic, spelled with the scalar codecs:
 *
 *   FP8 per row (per output channel of a weight [N, K]; per token of activations [rows, K]):
 *     amax  = max |x| over the row (NaN ignored)
 *     scale = fp32(amax / 448), 1 when that is 0 (amax 0)
 *     code  = encodeE4M3(fp32(x / scale))                 fp32 division, as the GPU computes it
 *     deq   = fp32(decodeE4M3(code) · scale)
 *
 *   NVFP4 (16-element blocks along the last axis K; K % 16 == 0):
 *     g     = fp32(amax / (448 · 6)), 1 when that is 0     per-tensor fp32 global scale
 *     s     = encodeE4M3(fp32(blockAmax / fp32(6 · g)))     e4m3 block-scale code
 *     e     = fp32(decodeE4M3(s) · g)                      effective block scale
 *     code  = encodeE2M1(fp32(x / e)), or 0 when e is 0
 *     deq   = fp32(decodeE2M1(code) · decodeE4M3(s) · g)   (the product is exact in a double)
 *     packed two codes a byte, element 2i in the low nibble, 2i+1 in the high nibble;
 *     block scales row-major [rows, K/16].
 *
 * The fast encoders are lookup tables indexed by the bits of the fp32 quotient that decide a
 * correctly rounded result: sign, exponent, the kept mantissa bits, the round bit and a sticky bit
 * (OR of the rest). e4m3 keeps at most 3 mantissa bits, so the index is sign|exponent|top 4 mantissa
 * bits|sticky (14 bits); e2m1 keeps 1, index sign|exponent|top 2 mantissa bits|sticky (12 bits).
 * Each entry is the scalar codec applied to a representative float with those bits, so the tables
 * are the scalar codecs by construction (test/quant/bulk.test.ts checks millions of inputs).
 */
import { decodeE2M1, decodeE4M3, E2M1_MAX, E4M3_MAX, encodeE2M1, encodeE4M3 } from './formats.ts';

export const NVFP4_BLOCK = 16;
const NVFP4_DIVISOR = E4M3_MAX * E2M1_MAX; // 2688

// ---- lookup tables ----------------------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const fromBits = (bits: number): number => { u32[0] = bits; return f32[0]; };

/** e4m3 code by (u >>> 18 & 0x3ffe) | sticky(u & 0x7ffff), u the fp32 bits. */
const E4M3_ENC = new Uint8Array(1 << 14);
for (let i = 0; i < E4M3_ENC.length; i++) E4M3_ENC[i] = encodeE4M3(fromBits((((i >>> 1) << 19) | (i & 1)) >>> 0));

/** e2m1 code by (u >>> 20 & 0xffe) | sticky(u & 0xfffff). */
const E2M1_ENC = new Uint8Array(1 << 12);
for (let i = 0; i < E2M1_ENC.length; i++) E2M1_ENC[i] = encodeE2M1(fromBits((((i >>> 1) << 21) | (i & 1)) >>> 0));

/** Decoded values of all 256 e4m3 codes / 16 e2m1 codes. */
export const E4M3_VALUES: Float64Array = Float64Array.from({ length: 256 }, (_, c) => decodeE4M3(c));
export const E2M1_VALUES: Float64Array = Float64Array.from({ length: 16 }, (_, c) => decodeE2M1(c));
const E4M3_F32 = Float32Array.from(E4M3_VALUES);
const E2M1_F32 = Float32Array.from(E2M1_VALUES);

/** encodeE4M3 of a float32 value (the value is rounded to fp32 first). */
export function encodeE4M3Fast(x: number): number {
  f32[0] = x;
  const u = u32[0];
  return E4M3_ENC[((u >>> 18) & 0x3ffe) | (((u & 0x7ffff) + 0x7ffff) >>> 19)];
}

/** encodeE2M1 of a float32 value (the value is rounded to fp32 first). */
export function encodeE2M1Fast(x: number): number {
  f32[0] = x;
  const u = u32[0];
  return E2M1_ENC[((u >>> 20) & 0xffe) | (((u & 0xfffff) + 0xfffff) >>> 20)];
}

/** e4m3 codes of fp32 values: dst[dOff + i] = encodeE4M3(src[i]). */
export function encodeE4M3Array(src: Float32Array, dst: Uint8Array, dOff = 0): void {
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i];
    dst[dOff + i] = E4M3_ENC[((b >>> 18) & 0x3ffe) | (((b & 0x7ffff) + 0x7ffff) >>> 19)];
  }
}

/** Running sums for the relative L2 error ‖x − deq(q(x))‖ / ‖x‖ and the amax. */
export interface ErrorSums { errSq: number; refSq: number; amax: number }
export const newErrorSums = (): ErrorSums => ({ errSq: 0, refSq: 0, amax: 0 });
export const relativeL2FromSums = (s: ErrorSums): number => (s.refSq > 0 ? Math.sqrt(s.errSq / s.refSq) : s.errSq > 0 ? Infinity : 0);

// ---- span kernels (shared by the in-memory and streaming quantizers) --------------------------

/** max |x[off .. off+n)|, NaN ignored. */
export function amaxSpan(x: Float32Array, off: number, n: number): number {
  let m = 0;
  for (let i = off, end = off + n; i < end; i++) {
    const a = Math.abs(x[i]);
    if (a > m) m = a;
  }
  return m;
}

/** The FP8 per-row scale for a row amax. */
export function fp8Scale(amax: number): number {
  const s = Math.fround(amax / E4M3_MAX);
  return s === 0 ? 1 : s;
}

/**
 * codes[cOff + i] = encodeE4M3(fp32(x[xOff + i] / scale)) for i < n. With `sums`, adds the squared
 * quantization error and the squared values, measured in the scaled domain (q − decode(code))²·scale²
 * — the report's figure, equal to ‖x − deq‖² up to fp32 rounding of the terms.
 * (One fused loop through a one-element fp32 cell: measured faster in V8 than a scratch row.)
 */
export function fp8EncodeSpan(
  x: Float32Array, xOff: number, n: number, scale: number, codes: Uint8Array, cOff: number, sums?: ErrorSums,
): void {
  const enc = E4M3_ENC, cell = f32, bits = u32;
  if (!sums) {
    for (let i = 0; i < n; i++) {
      cell[0] = x[xOff + i] / scale;
      const b = bits[0];
      codes[cOff + i] = enc[((b >>> 18) & 0x3ffe) | (((b & 0x7ffff) + 0x7ffff) >>> 19)];
    }
    return;
  }
  const dec = E4M3_F32;
  let e = 0, r = 0;
  for (let i = 0; i < n; i++) {
    const v = Math.fround(x[xOff + i] / scale);
    cell[0] = v;
    const b = bits[0];
    const c = enc[((b >>> 18) & 0x3ffe) | (((b & 0x7ffff) + 0x7ffff) >>> 19)];
    codes[cOff + i] = c;
    const d = v - dec[c];
    e += d * d;
    r += v * v;
  }
  sums.errSq += e * scale * scale;
  sums.refSq += r * scale * scale;
}

/** The NVFP4 per-tensor global scale for a tensor amax. */
export function nvfp4GlobalScale(amax: number): number {
  const g = Math.fround(amax / NVFP4_DIVISOR);
  return g === 0 ? 1 : g;
}

/**
 * NVFP4 of x[xOff .. xOff+n) (n % 16 == 0, blocks start at xOff) with global scale g:
 * packed[pOff .. pOff + n/2) and block-scale codes sc[sOff .. sOff + n/16). With `sums`, adds
 * the squared error (in the scaled domain, as fp8EncodeSpan), the squared values, and the amax.
 */
export function nvfp4EncodeSpan(
  x: Float32Array, xOff: number, n: number, g: number,
  packed: Uint8Array, pOff: number, sc: Uint8Array, sOff: number, sums?: ErrorSums,
): void {
  const enc4 = E4M3_ENC, enc2 = E2M1_ENC, dec2 = E2M1_F32, cell = f32, bits = u32;
  const sDen = Math.fround(6 * g);
  let e2 = 0, r2 = 0, m = sums ? sums.amax : 0;
  for (let blk = 0, nb = n >>> 4; blk < nb; blk++) {
    const base = xOff + (blk << 4);
    let bAmax = 0;
    for (let i = 0; i < 16; i++) {
      const a = Math.abs(x[base + i]);
      if (a > bAmax) bAmax = a;
    }
    cell[0] = bAmax / sDen;
    const su = bits[0];
    const s = enc4[((su >>> 18) & 0x3ffe) | (((su & 0x7ffff) + 0x7ffff) >>> 19)];
    sc[sOff + blk] = s;
    const eScale = Math.fround(E4M3_VALUES[s] * g);
    const p = pOff + (blk << 3);
    if (eScale === 0 || eScale !== eScale) {
      for (let i = 0; i < 8; i++) packed[p + i] = 0;
      if (sums) {
        let r = 0;
        for (let i = 0; i < 16; i++) { const v = x[base + i]; r += v * v; }
        e2 += r; r2 += r;
      }
    } else if (!sums) {
      for (let i = 0; i < 16; i += 2) {
        cell[0] = x[base + i] / eScale;
        const lo = bits[0];
        cell[0] = x[base + i + 1] / eScale;
        const hi = bits[0];
        packed[p + (i >>> 1)] = enc2[((lo >>> 20) & 0xffe) | (((lo & 0xfffff) + 0xfffff) >>> 20)]
          | (enc2[((hi >>> 20) & 0xffe) | (((hi & 0xfffff) + 0xfffff) >>> 20)] << 4);
      }
    } else {
      let e = 0, r = 0;
      for (let i = 0; i < 16; i += 2) {
        const v0 = Math.fround(x[base + i] / eScale);
        cell[0] = v0;
        const lo = bits[0];
        const v1 = Math.fround(x[base + i + 1] / eScale);
        cell[0] = v1;
        const hi = bits[0];
        const c0 = enc2[((lo >>> 20) & 0xffe) | (((lo & 0xfffff) + 0xfffff) >>> 20)];
        const c1 = enc2[((hi >>> 20) & 0xffe) | (((hi & 0xfffff) + 0xfffff) >>> 20)];
        packed[p + (i >>> 1)] = c0 | (c1 << 4);
        const d0 = v0 - dec2[c0], d1 = v1 - dec2[c1];
        e += d0 * d0 + d1 * d1;
        r += v0 * v0 + v1 * v1;
      }
      e2 += e * eScale * eScale;
      r2 += r * eScale * eScale;
    }
    if (bAmax > m) m = bAmax;
  }
  if (sums) { sums.errSq += e2; sums.refSq += r2; sums.amax = m; }
}

// ---- in-memory API ----------------------------------------------------------------------------

export interface Fp8Quantized {
  readonly rows: number;
  readonly cols: number;
  /** e4m3 codes [rows, cols], row-major. */
  readonly codes: Uint8Array;
  /** fp32 scale per row. */
  readonly scales: Float32Array;
}

export interface Nvfp4Quantized {
  readonly rows: number;
  readonly cols: number;
  /** e2m1 codes [rows, cols/2]: element 2i in the low nibble of byte i. */
  readonly packed: Uint8Array;
  /** e4m3 block-scale codes [rows, cols/16], row-major. */
  readonly blockScales: Uint8Array;
  /** fp32 per-tensor scale. */
  readonly globalScale: number;
}

function checkShape(x: ArrayLike<number>, rows: number, cols: number, what: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows * cols !== x.length) {
    throw new Error(`${what}: [${rows}, ${cols}] does not match ${x.length} elements`);
  }
}

/** FP8 e4m3 per-row quantization of x [rows, cols] (per output channel / per token). */
export function quantizeFp8(x: Float32Array, rows: number, cols: number, sums?: ErrorSums): Fp8Quantized {
  checkShape(x, rows, cols, 'quantizeFp8');
  const codes = new Uint8Array(rows * cols), scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const off = r * cols;
    const amax = amaxSpan(x, off, cols);
    const scale = fp8Scale(amax);
    scales[r] = scale;
    if (sums && amax > sums.amax) sums.amax = amax;
    fp8EncodeSpan(x, off, cols, scale, codes, off, sums);
  }
  return { rows, cols, codes, scales };
}

export function dequantizeFp8(q: Fp8Quantized, out = new Float32Array(q.rows * q.cols)): Float32Array {
  for (let r = 0; r < q.rows; r++) {
    const s = q.scales[r], off = r * q.cols;
    for (let j = 0; j < q.cols; j++) out[off + j] = E4M3_VALUES[q.codes[off + j]] * s;
  }
  return out;
}

/** max |x| over the whole array (NaN ignored). */
export const amaxOf = (x: Float32Array): number => amaxSpan(x, 0, x.length);

/**
 * NVFP4 quantization of x [rows, cols] (cols % 16 == 0). The global scale defaults to the one of
 * x's own amax; pass it to quantize part of a larger tensor.
 */
export function quantizeNvfp4(x: Float32Array, rows: number, cols: number, globalScale?: number, sums?: ErrorSums): Nvfp4Quantized {
  checkShape(x, rows, cols, 'quantizeNvfp4');
  if (cols % NVFP4_BLOCK) throw new Error(`quantizeNvfp4: the last axis (${cols}) must be a multiple of ${NVFP4_BLOCK}`);
  const g = globalScale ?? nvfp4GlobalScale(amaxOf(x));
  const packed = new Uint8Array((rows * cols) / 2), blockScales = new Uint8Array((rows * cols) / NVFP4_BLOCK);
  nvfp4EncodeSpan(x, 0, rows * cols, g, packed, 0, blockScales, 0, sums);
  return { rows, cols, packed, blockScales, globalScale: g };
}

export function dequantizeNvfp4(q: Nvfp4Quantized, out = new Float32Array(q.rows * q.cols)): Float32Array {
  const n = q.rows * q.cols, g = q.globalScale;
  for (let b = 0; b < n / NVFP4_BLOCK; b++) {
    const bs = E4M3_VALUES[q.blockScales[b]] * g;
    const zero = Math.fround(bs) === 0 || bs !== bs;
    for (let i = 0; i < NVFP4_BLOCK; i++) {
      const j = b * NVFP4_BLOCK + i;
      out[j] = zero ? 0 : E2M1_VALUES[(q.packed[j >>> 1] >>> ((j & 1) << 2)) & 15] * bs;
    }
  }
  return out;
}

/** ‖x − y‖₂ / ‖x‖₂ (0 when both are zero, Infinity when only x is). */
export function relativeL2Error(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`relativeL2Error: lengths ${x.length} and ${y.length} differ`);
  let e = 0, r = 0;
  for (let i = 0; i < x.length; i++) {
    const d = x[i] - y[i];
    e += d * d;
    r += x[i] * x[i];
  }
  return relativeL2FromSums({ errSq: e, refSq: r, amax: 0 });
}

// ---- source decoding ----------------------------------------------------------------------------

export type SourceDType = 'bfloat16' | 'float16' | 'float32';
export const SOURCE_BYTES: Record<SourceDType, number> = { bfloat16: 2, float16: 2, float32: 4 };

let f16Table: Float32Array | undefined;
function f16Values(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
      f16Table[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
  }
  return f16Table;
}

/**
 * Decodes n little-endian source elements from bytes[byteOff ..] into dst[0 .. n) (fp32, exact for
 * every source type). byteOff must be even (a multiple of 4 for float32).
 */
export function decodeSource(dtype: SourceDType, bytes: Uint8Array, byteOff: number, n: number, dst: Float32Array): void {
  const at = bytes.byteOffset + byteOff;
  if (dtype === 'float32') {
    if (at % 4 === 0) dst.set(new Float32Array(bytes.buffer, at, n));
    else dst.set(new Float32Array(bytes.slice(byteOff, byteOff + 4 * n).buffer));
    return;
  }
  const h = new Uint16Array(bytes.buffer, at, n);
  if (dtype === 'bfloat16') {
    const d = new Int32Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0; i < n; i++) d[i] = h[i] << 16;
  } else {
    const t = f16Values();
    for (let i = 0; i < n; i++) dst[i] = t[h[i]];
  }
}

/**
 * max |x| over n little-endian source elements at bytes[byteOff ..], read from the bit patterns
 * (|x| orders as the integer bits without the sign); NaN ignored, ±Infinity counts.
 */
export function amaxSource(dtype: SourceDType, bytes: Uint8Array, byteOff: number, n: number): number {
  const at = bytes.byteOffset + byteOff;
  if (dtype === 'float32') {
    const w = at % 4 === 0 ? new Uint32Array(bytes.buffer, at, n) : new Uint32Array(bytes.slice(byteOff, byteOff + 4 * n).buffer);
    let m = 0;
    for (let i = 0; i < n; i++) {
      const a = w[i] & 0x7fffffff;
      if (a > m && a <= 0x7f800000) m = a;
    }
    return fromBits(m);
  }
  const h = new Uint16Array(bytes.buffer, at, n);
  const inf = dtype === 'bfloat16' ? 0x7f80 : 0x7c00;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const a = h[i] & 0x7fff;
    if (a > m && a <= inf) m = a;
  }
  return dtype === 'bfloat16' ? fromBits(m << 16) : f16Values()[m];
}
