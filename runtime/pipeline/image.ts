/**
 * From the VAE's output to image bytes.
 *
 * `toRgb8`: diffusers' VaeImageProcessor.postprocess for a float32 pipeline: clamp(x*0.5 + 0.5,
 * 0, 1) per value (float32), then uint8(round(v*255)) with NumPy's round-half-to-even, NCHW planes
 * -> interleaved RGB. `encodeImage`: sharp (libvips, imported when first used, so the GPU host's
 * bundle, which has no sharp, can still load the pipelines) writes PNG / WebP / JPEG; its encoders
 * are deterministic, so equal pixels give equal bytes. `encodePng` (./png.ts) needs no sharp.
 */

const f = Math.fround;

/** Round half to even (NumPy's np.round). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** [3, H, W] in ~[-1, 1] -> H*W*3 RGB8. */
export function toRgb8(chw: Float32Array, height: number, width: number): Uint8Array {
  const plane = height * width;
  if (chw.length !== 3 * plane) throw new Error(`toRgb8: expected ${3 * plane} values for 3x${height}x${width}, found ${chw.length}`);
  const out = new Uint8Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    for (let p = 0, i = c * plane, o = c; p < plane; p++, i++, o += 3) {
      let v = f(f(chw[i] * 0.5) + 0.5);
      v = v < 0 ? 0 : v > 1 ? 1 : v; // NaN stays NaN and stores as 0, as before
      // roundHalfEven for v*255 in [0, 255]: Math.round takes a tie up; an odd result of a tie goes back down.
      const y = f(v * 255);
      const r = Math.round(y);
      out[o] = r - y === 0.5 && (r & 1) ? r - 1 : r;
    }
  }
  return out;
}

export type OutputFormat = 'png' | 'webp' | 'jpeg';

export interface EncodeOptions {
  format: OutputFormat;
  /** 0-100 for webp/jpeg (quality = compression level as OpenAI defines it); ignored for png. */
  compression?: number;
}

export async function encodeImage(rgb: Uint8Array, width: number, height: number, opts: EncodeOptions): Promise<Buffer> {
  const sharp = (await import('sharp')).default;
  const img = sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } });
  const quality = opts.compression ?? 100;
  switch (opts.format) {
    case 'png': return img.png().toBuffer();
    case 'webp': return img.webp({ quality }).toBuffer();
    case 'jpeg': return img.jpeg({ quality }).toBuffer();
  }
}

export const MIME: Record<OutputFormat, string> = { png: 'image/png', webp: 'image/webp', jpeg: 'image/jpeg' };
