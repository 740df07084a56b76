/**
 * encodePng: RGB8 -> a PNG file with no native code (node:zlib), for hosts without sharp (the GPU
 * host's bundle: `npx bench --e2e` encodes its images here). One IDAT chunk, filter 0 (none) on
 * every row, zlib level 6 (libpng's and sharp's default level); what PNG readers need and no more:
 * IHDR (8-bit truecolour), IDAT, IEND, each with its CRC-32.
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
export const PNG_DEFAULTS: { level: number; filter: PngFilter } = { level: 6, filter: 'none' };

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
  /** zlib level 0-9 (default PNG_DEFAULTS.level). */
  level?: number;
  /** zlib strategy (zlib.constants.Z_*; default Z_DEFAULT_STRATEGY). */
  strategy?: number;
  /** One PNG filter type on every row (default 'none'). */
  filter?: PngFilter;
}

/** IDAT payload before deflate: each row prefixed by its filter type byte, filtered. */
export function filterRows(rgb: Uint8Array, width: number, height: number, filter: PngFilter): Buffer {
  const stride = width * 3;
  const raw = Buffer.allocUnsafe((stride + 1) * height);
  const type = filter === 'none' ? 0 : filter === 'sub' ? 1 : 2;
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1), i = y * stride;
    raw[o] = type;
    if (type === 0 || (type === 2 && y === 0)) raw.set(rgb.subarray(i, i + stride), o + 1);
    else if (type === 1) {
      for (let x = 0; x < 3; x++) raw[o + 1 + x] = rgb[i + x];
      for (let x = 3; x < stride; x++) raw[o + 1 + x] = rgb[i + x] - rgb[i + x - 3];
    } else for (let x = 0; x < stride; x++) raw[o + 1 + x] = rgb[i + x] - rgb[i + x - stride];
  }
  return raw;
}

export function encodePng(rgb: Uint8Array, width: number, height: number, options: PngOptions | number = {}): Buffer {
  const o = typeof options === 'number' ? { level: options } : options;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new Error(`encodePng: expected a positive integer size, found ${width}x${height}`);
  if (rgb.length !== width * height * 3) throw new Error(`encodePng: expected ${width * height * 3} bytes for ${width}x${height} RGB, found ${rgb.length}`);
  const raw = filterRows(rgb, width, height, o.filter ?? PNG_DEFAULTS.filter);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, filter method 0, no interlace
  const idat = zlib.deflateSync(raw, { level: o.level ?? PNG_DEFAULTS.level, strategy: o.strategy ?? zlib.constants.Z_DEFAULT_STRATEGY });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}
