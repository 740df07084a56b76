/**
 * bfloat16 at the seams between modules, on the host.
 *
 * The compiled modules take and give bfloat16 where their graph does; the pipelines work in
 * float32. compiler/ir/tensor.ts keeps every float type decoded in a Float32Array; a module's
 * bfloat16 output decoded that way and passed on to the next module (Flux.2's text embeddings,
 * 7.9M values, into the transformer) would be converted twice for nothing, and an image decoded
 * to float32 only to become RGB8. So the GPU executor returns its bfloat16 outputs UNDECODED, as a
 * "bits tensor": dtype 'bfloat16' with Uint16Array storage holding the raw bits (the one place a
 * Tensor's float storage is not decoded; `isBits` tells). Code that reads an executor's output
 * values goes through `valuesOf` (decodes a bits tensor, exactly); code that stages a Tensor into
 * a bfloat16 slot goes through `bitsOf`, which gives a bits tensor's own bits — the same bytes as
 * f32ToBf16 of the decoded values, since a decoded bfloat16 re-encodes to itself, except that
 * f32ToBf16 writes every NaN as 0x7fc0, which `bitsOf` does too (a copy, only when a NaN is
 * there) — and converts anything else.
 */
import { Tensor } from '../../compiler/ir/tensor.ts';

/** float32 -> bfloat16 bits as dtype.ts f32ToBf16 (nearest even, every NaN 0x7fc0), two values per 32-bit store. */
export function f32ToBf16Array(x: Float32Array): Uint16Array {
  const n = x.length;
  const u = new Uint32Array(x.buffer, x.byteOffset, n);
  const out = new Uint16Array(n);
  const pairs = n >>> 1;
  const o32 = new Uint32Array(out.buffer, 0, pairs);
  for (let i = 0, j = 0; i < pairs; i++, j += 2) {
    const a = u[j], b = u[j + 1];
    const lo = (a & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (a + 0x7fff + ((a >>> 16) & 1)) >>> 16;
    const hi = (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    o32[i] = (lo & 0xffff) | (hi << 16);
  }
  if (n & 1) {
    const a = u[n - 1];
    out[n - 1] = (a & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (a + 0x7fff + ((a >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** bfloat16 bits -> float32 values (exact), 32 bits at a time where the bits are 4-byte aligned; into `out` when given (a reused buffer). */
export function decodeBf16(bits: Uint16Array, into?: Float32Array): Float32Array {
  const n = bits.length;
  const out: Float32Array = into ?? new Float32Array(n);
  if (out.length !== n) throw new Error(`decodeBf16: ${n} values into ${out.length}`);
  const o32 = new Uint32Array(out.buffer, out.byteOffset, n);
  if (bits.byteOffset % 4 === 0) {
    const pairs = n >>> 1;
    const w32 = new Uint32Array(bits.buffer, bits.byteOffset, pairs);
    for (let i = 0, j = 0; i < pairs; i++, j += 2) {
      const w = w32[i];
      o32[j] = w << 16;
      o32[j + 1] = w & 0xffff0000;
    }
    if (n & 1) o32[n - 1] = bits[n - 1] << 16;
  } else {
    for (let i = 0; i < n; i++) o32[i] = bits[i] << 16;
  }
  return out;
}

/** Bits arrays whose maker vouches that no NaN in them is other than 0x7fc0 (written by f32ToBf16 rounding). */
const canonical = new WeakSet<Uint16Array>();

/**
 * A bits tensor: bfloat16 values kept as their raw bits (see the header). `canonicalNaN`: the bits
 * come from f32ToBf16 rounding (eulerStep's `staged`), so staging them needs no NaN scan.
 */
export function bitsTensor(shape: readonly number[], bits: Uint16Array, canonicalNaN = false): Tensor {
  if (canonicalNaN) canonical.add(bits);
  return new Tensor('bfloat16', shape, bits);
}

/** Whether `t` is a bits tensor (bfloat16 with Uint16Array storage) rather than decoded values. */
export function isBits(t: Tensor): t is Tensor & { data: Uint16Array } {
  return t.dtype === 'bfloat16' && t.data instanceof Uint16Array;
}

/** A tensor's values as float32: a bits tensor decoded (into `scratch` when given), anything else as Tensor.toFloat32 gives them. */
export function valuesOf(t: Tensor, scratch?: Float32Array): Float32Array {
  return isBits(t) ? decodeBf16(t.data, scratch) : t.toFloat32();
}

/** `bits` with every NaN written as 0x7fc0 (as f32ToBf16 writes them): `bits` itself when it holds none. */
export function canonicalNaNs(bits: Uint16Array): Uint16Array {
  const n = bits.length;
  let nan = 0;
  if (bits.byteOffset % 4 === 0) {
    const w32 = new Uint32Array(bits.buffer, bits.byteOffset, n >>> 1);
    // Per half, magnitude + 0x7f carries into bit 15 exactly when the magnitude is above 0x7f80 (a NaN).
    // Four words per iteration: 1.4x faster on Flux.2's 7.9M embedding values (4.7 -> 3.3 ms on the
    // CPU machine, AMD EPYC 2 vCPUs, Node 20.20.2, a scratch micro-benchmark of this loop).
    const len = w32.length;
    let i = 0;
    for (; i + 3 < len; i += 4) {
      nan |= ((w32[i] & 0x7fff7fff) + 0x007f007f) | ((w32[i + 1] & 0x7fff7fff) + 0x007f007f)
        | ((w32[i + 2] & 0x7fff7fff) + 0x007f007f) | ((w32[i + 3] & 0x7fff7fff) + 0x007f007f);
    }
    for (; i < len; i++) nan |= (w32[i] & 0x7fff7fff) + 0x007f007f;
    if (n & 1) nan |= (bits[n - 1] & 0x7fff) + 0x7f;
  } else {
    for (let i = 0; i < n; i++) nan |= (bits[i] & 0x7fff) + 0x7f;
  }
  if ((nan & 0x80008000) === 0) return bits;
  const out = Uint16Array.from(bits);
  for (let i = 0; i < n; i++) if ((out[i] & 0x7fff) > 0x7f80) out[i] = 0x7fc0;
  return out;
}

/** The bfloat16 bits a bfloat16 slot gets for `t`: a bits tensor's own (NaNs canonical), else its values converted. */
export function bitsOf(t: Tensor): Uint16Array {
  if (!isBits(t)) return f32ToBf16Array(t.toFloat32());
  return canonical.has(t.data) ? t.data : canonicalNaNs(t.data);
}
