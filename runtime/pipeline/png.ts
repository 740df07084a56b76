/**
 * encodePng: RGB8 -> a PNG file with no native code (node:zlib). The server's PNGs
 * (image.ts encodeImage, encodePngAsync) and `npx bench --e2e`'s (encodePng) both come from here,
 * with PNG_DEFAULTS, so the bench times what the server sends. One IDAT chunk, one filter type on
 * every row; what PNG readers need and no more: IHDR (8-bit truecolour), IDAT, IEND, each with
 * its CRC-32.
 *
 * PNG_DEFAULTS: filter 'up' on every row, zlib strategy Z_RLE (run-length matches only, distance
 * 1, with Huffman coding; the level does not change its bytes). Measured with
 * `npx tsx bench/host-overhead.ts --png-sweep` (2026-11-25, AMD EPYC (Zen 4, family 25 model 17,
 * KVM), Node 20.20.2, 1024x1024, median ms / MB; bench/results/host-overhead-2026-11-25.md):
 *
 *   setting                          noise           natural-like      photo (JPEG upscaled)
 *   level 6, filter none (before)    58.6 / 3.148    62.6 / 1.890      68.4 / 2.734
 *   level 1, filter none             57.6 / 3.148    46.4 / 1.932      58.9 / 2.757
 *   level 1, filter up               56.8 / 3.148    31.6 / 1.466      44.6 / 1.828
 *   level 6, filter up               59.7 / 3.148   101.8 / 1.403     124.5 / 1.725
 *   Z_RLE, filter none               16.0 / 3.148    19.5 / 2.440      24.4 / 2.956
 *   Z_RLE, filter up (default)       17.5 / 3.148    22.7 / 1.247      26.9 / 1.841
 *   sharp png() (the server before)  50.8 / 3.152    46.1 / 1.897      52.1 / 2.740
 *   sharp level 6, adaptive filters  83.5 / 3.152    99.6 / 1.338     107.0 / 1.594
 *
 * Z_RLE + up is 2.5-3.3x faster than the previous default and, on the natural images, 33% smaller
 * (the filter does the modelling deflate's match search would; noise is incompressible either
 * way): the choice of a latency-bound image server. Paeth would compress the photo further (1.56
 * MB) but costs ~40 ms of per-byte JS here; 'sub' is slower than 'up' and no smaller. Every
 * setting remains a parameter (PngOptions).
 */
import * as zlib from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The settings the bench and the server use (see the header). */
export const PNG_DEFAULTS: { level: number; strategy: number; filter: PngFilter } = { level: 6, strategy: zlib.constants.Z_RLE, filter: 'up' };

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/** CRC-32 (ISO 3309, as PNG and zlib's crc32): zlib's own where Node has it (20.15+), else a table loop. */
export function crc32(bytes: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(bytes) >>> 0 : crc32Table(bytes);
}

export function crc32Table(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export type PngFilter = 'none' | 'sub' | 'up';

export interface PngOptions {
  /** zlib level 0-9 (default PNG_DEFAULTS.level; with Z_RLE any of 1-9 gives the same bytes). */
  level?: number;
  /** zlib strategy, zlib.constants.Z_* (default PNG_DEFAULTS.strategy). */
  strategy?: number;
  /** One PNG filter type on every row (default PNG_DEFAULTS.filter). */
  filter?: PngFilter;
}

const FILTER_TYPE: Record<PngFilter, number> = { none: 0, sub: 1, up: 2 };
const H = 0x80808080;

/** IDAT payload before deflate: each row prefixed by its filter type byte, then filtered (bytes mod 256). */
export function filterRows(rgb: Uint8Array, width: number, height: number, filter: PngFilter): Buffer {
  const stride = width * 3;
  const raw = Buffer.allocUnsafe((stride + 1) * height);
  const type = FILTER_TYPE[filter];
  // 'up', four bytes at a time: SWAR byte-wise subtraction into an aligned row, then one copy.
  const words = stride >>> 2;
  const swar = type === 2 && rgb.byteOffset % 4 === 0 && stride % 4 === 0; // every row, and the one above, 4-byte aligned
  const rgb32 = swar ? new Uint32Array(rgb.buffer, rgb.byteOffset, (rgb.length >>> 2)) : undefined;
  const row32 = new Uint32Array(swar ? words : 0);
  const row8 = new Uint8Array(row32.buffer);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1), i = y * stride;
    raw[o] = type;
    if (type === 0 || (type === 2 && y === 0)) raw.set(rgb.subarray(i, i + stride), o + 1);
    else if (type === 1) {
      for (let x = 0; x < 3 && x < stride; x++) raw[o + 1 + x] = rgb[i + x];
      for (let x = 3; x < stride; x++) raw[o + 1 + x] = rgb[i + x] - rgb[i + x - 3];
    } else if (rgb32) {
      const c = i >>> 2, p = c - words;
      for (let k = 0; k < words; k++) {
        const a = rgb32[c + k], b = rgb32[p + k];
        row32[k] = ((a | H) - (b & ~H)) ^ ((a ^ ~b) & H);
      }
      raw.set(row8, o + 1);
    } else for (let x = 0; x < stride; x++) raw[o + 1 + x] = rgb[i + x] - rgb[i + x - stride];
  }
  return raw;
}

function pngFile(width: number, height: number, idat: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, filter method 0, no interlace
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

function prepare(rgb: Uint8Array, width: number, height: number, options: PngOptions | number) {
  const o = typeof options === 'number' ? { level: options } : options;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new Error(`encodePng: expected a positive integer size, found ${width}x${height}`);
  if (rgb.length !== width * height * 3) throw new Error(`encodePng: expected ${width * height * 3} bytes for ${width}x${height} RGB, found ${rgb.length}`);
  const raw = filterRows(rgb, width, height, o.filter ?? PNG_DEFAULTS.filter);
  // One output chunk for the whole stream (zlib's 16 KiB default makes ~200 of them; on the thread pool each is a round trip: 28 ms where one chunk takes 15).
  const chunkSize = raw.length + (raw.length >>> 7) + 1024;
  return { raw, zopts: { level: o.level ?? PNG_DEFAULTS.level, strategy: o.strategy ?? PNG_DEFAULTS.strategy, chunkSize } };
}

/** RGB8 -> PNG, on this thread (a number is the zlib level alone). */
export function encodePng(rgb: Uint8Array, width: number, height: number, options: PngOptions | number = {}): Buffer {
  const { raw, zopts } = prepare(rgb, width, height, options);
  return pngFile(width, height, zlib.deflateSync(raw, zopts));
}

/** encodePng with the deflate on libuv's thread pool (the server's: the event loop stays free); the same bytes. */
export async function encodePngAsync(rgb: Uint8Array, width: number, height: number, options: PngOptions | number = {}): Promise<Buffer> {
  const { raw, zopts } = prepare(rgb, width, height, options);
  const idat = await new Promise<Buffer>((ok, fail) => zlib.deflate(raw, zopts, (e, b) => (e ? fail(e) : ok(b))));
  return pngFile(width, height, idat);
}
