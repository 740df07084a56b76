/**
 * From the VAE's output to image bytes.
 *
 * `toRgb8`: diffusers' VaeImageProcessor.postprocess for a float32 pipeline: clamp(x*0.5 + 0.5,
 * 0, 1) per value (float32), then uint8(round(v*255)) with NumPy's round-half-to-even, NCHW planes
 * -> interleaved RGB (`rgb8Of` per value: a branch-free round-half-even). A bfloat16 image from
 * the GPU executor (runtime/executor/bf16.ts bits) goes by a 64 KiB table of rgb8Of over every
 * bfloat16 value (`toRgb8Bits`, the same bytes): 4.5 ms for 1024x1024 on this machine's AMD EPYC
 * where the float path took 52 ms on a noise image before (15 ms now).
 *
 * `encodeImage`: PNG through ./png.ts with PNG_DEFAULTS (the settings `npx bench --e2e` times, so
 * the bench measures what the server sends; deflate on the thread pool); WebP / JPEG through sharp
 * (libvips, imported when first used, so the GPU host's bundle, which has no sharp, can still load
 * the pipelines). Both are deterministic: equal pixels give equal bytes.
 */

import type { Tensor } from '../../compiler/ir/tensor.ts';
import { isBits } from '../executor/bf16.ts';
import { PNG_DEFAULTS, encodePngAsync } from './png.ts';

const f = Math.fround;

/** Round half to even (NumPy's np.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** One value of toRgb8: clamp(x*0.5 + 0.5, 0, 1) in float32, then round-half-even(v*255); NaN -> 0. */
export function rgb8Of(x: number): number {
  let v = f(f(x * 0.5) + 0.5);
  v = v < 0 ? 0 : v > 1 ? 1 : v; // NaN stays NaN and stores as 0
  // v*255 is in [0, 255]: adding and subtracting 2^52 in float64 rounds it to an integer, ties to even.
  return (f(v * 255) + 4503599627370496) - 4503599627370496;
}

let lut: Uint8Array | undefined;

/** rgb8Of of every bfloat16 value, by its bits (built once, 64 KiB). */
export function rgb8Table(): Uint8Array {
  if (lut) return lut;
  const t = new Uint8Array(65536);
  const u = new Uint32Array(1), x = new Float32Array(u.buffer);
  for (let b = 0; b < 65536; b++) {
    u[0] = b << 16;
    t[b] = rgb8Of(x[0]);
  }
  return (lut = t);
}

/** [3, H, W] in ~[-1, 1] -> H*W*3 RGB8 (rgb8Of per value). */
export function toRgb8(chw: Float32Array, height: number, width: number): Uint8Array {
  const plane = height * width;
  if (chw.length !== 3 * plane) throw new Error(`toRgb8: expected ${3 * plane} values for 3x${height}x${width}, found ${chw.length}`);
  const out = new Uint8Array(3 * plane);
  for (let p = 0, o = 0; p < plane; p++, o += 3) {
    out[o] = rgb8Of(chw[p]);
    out[o + 1] = rgb8Of(chw[p + plane]);
    out[o + 2] = rgb8Of(chw[p + 2 * plane]);
  }
  return out;
}

/** toRgb8 of bfloat16 values given as their bits: a lookup in rgb8Table per value (the same bytes as toRgb8 of the decoded values). */
export function toRgb8Bits(bits: Uint16Array, height: number, width: number): Uint8Array {
  const plane = height * width;
  if (bits.length !== 3 * plane) throw new Error(`toRgb8: expected ${3 * plane} values for 3x${height}x${width}, found ${bits.length}`);
  const t = rgb8Table();
  const out = new Uint8Array(3 * plane);
  if (bits.byteOffset % 4 === 0 && plane % 2 === 0) {
    // Two pixels per step: one 32-bit read from each plane.
    const half = plane >>> 1, w = new Uint32Array(bits.buffer, bits.byteOffset, 3 * half);
    for (let q = 0, o = 0; q < half; q++, o += 6) {
      const r = w[q], g = w[q + half], b = w[q + 2 * half];
      out[o] = t[r & 0xffff]; out[o + 1] = t[g & 0xffff]; out[o + 2] = t[b & 0xffff];
      out[o + 3] = t[r >>> 16]; out[o + 4] = t[g >>> 16]; out[o + 5] = t[b >>> 16];
    }
    return out;
  }
  for (let p = 0, o = 0; p < plane; p++, o += 3) {
    out[o] = t[bits[p]];
    out[o + 1] = t[bits[p + plane]];
    out[o + 2] = t[bits[p + 2 * plane]];
  }
  return out;
}

/** A VAE output tensor [1, 3, (1,) H, W] -> RGB8: by table when it holds bfloat16 bits (runtime/executor/bf16.ts), else toRgb8. */
export function rgb8(image: Tensor, height: number, width: number): Uint8Array {
  return isBits(image) ? toRgb8Bits(image.data, height, width) : toRgb8(image.toFloat32(), height, width);
}

export type OutputFormat = 'png' | 'webp' | 'jpeg';

export interface EncodeOptions {
  format: OutputFormat;
  /** 0-100 for webp/jpeg (quality = compression level as OpenAI defines it); ignored for png. */
  compression?: number;
}

export async function encodeImage(rgb: Uint8Array, width: number, height: number, opts: EncodeOptions): Promise<Buffer> {
  // PNG: png.ts with its defaults (what `npx bench --e2e` times), not sharp's — see png.ts's header.
  if (opts.format === 'png') return encodePngAsync(rgb, width, height, PNG_DEFAULTS);
  const sharp = (await import('sharp')).default;
  const img = sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } });
  const quality = opts.compression ?? 100;
  switch (opts.format) {
    case 'webp': return img.webp({ quality }).toBuffer();
    case 'jpeg': return img.jpeg({ quality }).toBuffer();
  }
}

export const MIME: Record<OutputFormat, string> = { png: 'image/png', webp: 'image/webp', jpeg: 'image/jpeg' };
