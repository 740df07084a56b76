/**
 * encodePngAsync: RGB8 -> a PNG file with no native code (node:zlib). The server's PNGs (image.ts
 * encodeImage) and `npx bench --e2e`'s both come from this one call, with PNG_DEFAULTS, so the
 * bench times what the server sends. One IDAT chunk, one filter type on every row; what PNG
 * readers need and no more: IHDR (8-bit truecolour), IDAT, IEND, each with its CRC-32.
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
 *
 * Parts (PngOptions.parts, default 'auto' = MAX_PARTS, libuv's 4 pool threads): the filtered rows
 * cut into row ranges, each deflated on its own pool thread, pigz-style (encodePngAsync). The
 * stream differs from one deflate by a block boundary and an empty stored block per part (at 4
 * parts: noise +30 bytes, natural-like +38, photo -148) and decodes to the same pixels.
 * `--png-sweep --png-parts`, the same machine and images, Z_RLE + up, async, 2026-11-26
 * (bench/results/png-parallel-2026-11-26.md): median ms of 31 per run, every encoder once per
 * round in a shuffled order; the median of 5 runs (their range) with the 2 shared cores at load
 * 2.5-3.8 from other work:
 *
 *   parts                            noise               natural-like        photo
 *   1 (one zlib deflate, as before)  23.0 (21.5-29.9)    23.3 (23.0-23.3)    27.5 (27.0-27.8)
 *   2                                19.2 (17.1-25.4)    18.8 (17.5-27.2)    24.4 (20.2-31.4)
 *   3                                17.8 (15.4-27.8)    16.6 (16.0-25.7)    21.0 (17.8-30.3)
 *   4 ('auto', the default)          18.3 (14.9-28.9)    16.9 (16.3-34.3)    20.0 (19.6-30.2)
 *   8 (queued behind 4 threads)      17.0 (14.5-28.4)    16.5 (15.6-28.9)    18.3 (17.6-30.2)
 *   'up' filtering alone              2.3                 2.2                 2.2
 *
 * 4 parts: 1.25-1.4x faster than one deflate on two cores; more parts than cores still help here
 * (the last part starts only once every row is filtered; smaller parts keep both cores busy to the
 * end), and 8 is no better than 4 beyond noise (with 4 pool threads, on more cores, it would be
 * two rounds). The parts cost 0-2.5 ms more CPU in all (up to ~10%; the Adler-32 is computed in
 * JS on this thread while the pool compresses, 1.8 ms since these runs, 2.4 in them), so with both
 * cores busy elsewhere they gain nothing (the slowest run, load rising to 3.8: the ranges' tops).
 * The server's host has 16 cores: there the estimate is filtering (2.3 ms) + one quarter's
 * deflate (3.8-6.1 ms single-threaded here) + assembly (copy + CRC-32, 0.4-2.1 ms), ~7-11 ms where
 * one deflate takes 21-28 ms here. Measured there since (NVIDIA H100 host, `npx bench --e2e`,
 * bench/RESULTS.md "Session 5"): PNG stage 31 -> 12-14 ms (Flux.2), 48 -> 16-26 ms (Qwen-Image).
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

/**
 * The most row ranges 'auto' deflates at once: libuv's pool threads (UV_THREADPOOL_SIZE, default
 * 4; more parts than threads only queue; it must be set before Node starts: the ES module loader
 * starts the pool before any module's code runs). Not capped by the cores: on 2 cores 4 parts beat 2
 * (the last part starts after all filtering; smaller parts balance the threads; header).
 */
export const MAX_PARTS = Math.max(1, Math.min(1024, Math.floor(Number(process.env.UV_THREADPOOL_SIZE)) || 4));
/** 'auto' gives each part at least this many filtered bytes (a small image is one deflate: a pool round trip costs more than it saves). */
export const MIN_PART_BYTES = 256 * 1024;

/** The settings the bench and the server use (see the header). */
export const PNG_DEFAULTS: { level: number; strategy: number; filter: PngFilter; parts: number | 'auto' } = { level: 6, strategy: zlib.constants.Z_RLE, filter: 'up', parts: 'auto' };

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

/**
 * Adler-32 (RFC 1950, zlib's adler32) of `bytes`, continuing from `adler` (1 to start). Sixteen
 * bytes a step (a += x0 + ... + x15, b += 16a + 16x0 + 15x1 + ... + x15), reduced mod 65521
 * every 5552 bytes as zlib does (the sums stay far below 2^53): 1.8 ms for 3 MB on this machine's
 * EPYC (byte by byte 3.0, four at a time 2.4).
 */
export function adler32(bytes: Uint8Array, adler = 1): number {
  let a = adler & 0xffff, b = adler >>> 16;
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const end = Math.min(n, i + 5552), end16 = end - ((end - i) & 15);
    for (; i < end16; i += 16) {
      const x0 = bytes[i], x1 = bytes[i + 1], x2 = bytes[i + 2], x3 = bytes[i + 3], x4 = bytes[i + 4], x5 = bytes[i + 5], x6 = bytes[i + 6], x7 = bytes[i + 7];
      const y0 = bytes[i + 8], y1 = bytes[i + 9], y2 = bytes[i + 10], y3 = bytes[i + 11], y4 = bytes[i + 12], y5 = bytes[i + 13], y6 = bytes[i + 14], y7 = bytes[i + 15];
      b += 16 * a + 16 * x0 + 15 * x1 + 14 * x2 + 13 * x3 + 12 * x4 + 11 * x5 + 10 * x6 + 9 * x7 + 8 * y0 + 7 * y1 + 6 * y2 + 5 * y3 + 4 * y4 + 3 * y5 + 2 * y6 + y7;
      a += x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + y0 + y1 + y2 + y3 + y4 + y5 + y6 + y7;
    }
    for (; i < end; i++) b += a += bytes[i];
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

export type PngFilter = 'none' | 'sub' | 'up';

export interface PngOptions {
  /** zlib level 0-9 (default PNG_DEFAULTS.level; with Z_RLE any of 1-9 gives the same bytes). */
  level?: number;
  /** zlib strategy, zlib.constants.Z_* (default PNG_DEFAULTS.strategy). */
  strategy?: number;
  /** One PNG filter type on every row (default PNG_DEFAULTS.filter). */
  filter?: PngFilter;
  /**
   * Row ranges deflated in parallel on libuv's pool (default PNG_DEFAULTS.parts): a count (at most
   * the height), or 'auto': MAX_PARTS, fewer so that each has MIN_PART_BYTES. 1 is one zlib
   * deflate of the whole, the bytes of the encoder before parts.
   */
  parts?: number | 'auto';
}

const FILTER_TYPE: Record<PngFilter, number> = { none: 0, sub: 1, up: 2 };
const H = 0x80808080;

/**
 * Rows [y0, y1) of the IDAT payload before deflate into `raw` (the whole image's, row y at
 * y * (stride + 1)): each row prefixed by its filter type byte, then filtered (bytes mod 256).
 * 'up' on row y0 > 0 reads row y0 - 1 of `rgb`, so ranges filter independently.
 */
export function filterRowsInto(raw: Uint8Array, rgb: Uint8Array, width: number, filter: PngFilter, y0: number, y1: number): void {
  const stride = width * 3;
  const type = FILTER_TYPE[filter];
  // 'up', four bytes at a time: SWAR byte-wise subtraction into an aligned row, then one copy.
  const words = stride >>> 2;
  const swar = type === 2 && rgb.byteOffset % 4 === 0 && stride % 4 === 0; // every row, and the one above, 4-byte aligned
  const rgb32 = swar ? new Uint32Array(rgb.buffer, rgb.byteOffset, (rgb.length >>> 2)) : undefined;
  const row32 = new Uint32Array(swar ? words : 0);
  const row8 = new Uint8Array(row32.buffer);
  for (let y = y0; y < y1; y++) {
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
}

/** The whole image's IDAT payload before deflate (filterRowsInto over every row). */
export function filterRows(rgb: Uint8Array, width: number, height: number, filter: PngFilter): Buffer {
  const raw = Buffer.allocUnsafe((width * 3 + 1) * height);
  filterRowsInto(raw, rgb, width, filter, 0, height);
  return raw;
}

/** Row boundaries of `parts` ranges as even as rows allow (the first ones one row longer where the height does not divide). */
export function partRows(height: number, parts: number): number[] {
  const n = Math.max(1, Math.min(height, Math.floor(parts)));
  return Array.from({ length: n + 1 }, (_, k) => k * Math.floor(height / n) + Math.min(k, height % n));
}

/** The zlib header zlib writes (RFC 1950): deflate, 32 KiB window, FLEVEL as deflate.c sets it, FCHECK. */
function zlibHeader(level: number, strategy: number): [number, number] {
  if (level === zlib.constants.Z_DEFAULT_COMPRESSION) level = 6;
  const flevel = strategy >= zlib.constants.Z_HUFFMAN_ONLY || level < 2 ? 0 : level < 6 ? 1 : level === 6 ? 2 : 3;
  const h = (0x78 << 8) | (flevel << 6);
  return [0x78, (h + 31 - (h % 31)) & 0xff];
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The PNG file, written once: signature, IHDR, one IDAT of `head` + `parts` + `tail` (the zlib stream), IEND; each chunk with its CRC-32. */
function pngFile(width: number, height: number, head: number[], parts: Uint8Array[], tail: number[]): Buffer {
  const idatLength = head.length + parts.reduce((s, p) => s + p.length, 0) + tail.length;
  const out = Buffer.allocUnsafe(8 + 25 + 12 + idatLength + 12);
  out.set(SIGNATURE, 0);
  let at = 8;
  const chunk = (type: string, write: () => void, length: number) => {
    out.writeUInt32BE(length, at);
    out.write(type, at + 4, 'latin1');
    write();
    out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + length)), at + 8 + length);
    at += 12 + length;
  };
  // 8 bits, truecolour, deflate, filter method 0, no interlace
  chunk('IHDR', () => { out.writeUInt32BE(width, at + 8); out.writeUInt32BE(height, at + 12); out.set([8, 2, 0, 0, 0], at + 16); }, 13);
  chunk('IDAT', () => {
    let p = at + 8;
    out.set(head, p); p += head.length;
    for (const part of parts) { out.set(part, p); p += part.length; }
    out.set(tail, p);
  }, idatLength);
  chunk('IEND', () => {}, 0);
  return out;
}

type Deflate = (buf: Uint8Array, options: zlib.ZlibOptions, callback: (error: Error | null, result: Buffer) => void) => void;
const run = (f: Deflate, buf: Uint8Array, options: zlib.ZlibOptions) => new Promise<Buffer>((ok, fail) => f(buf, options, (e, b) => (e ? fail(e) : ok(b))));

/**
 * RGB8 -> PNG (a number is the zlib level alone). The rows are filtered range by range, each
 * range's deflateRaw queued on libuv's thread pool as soon as it is filtered (so the next range's
 * filtering overlaps it); every range but the last ends with Z_SYNC_FLUSH (an empty stored block:
 * byte-aligned, BFINAL 0), the last with Z_FINISH. The IDAT is one zlib stream: the header zlib
 * would write, the ranges' raw deflate data in order, and the Adler-32 of the whole payload,
 * computed here while the pool compresses. With one part it is zlib's own deflate of the whole.
 */
export async function encodePngAsync(rgb: Uint8Array, width: number, height: number, options: PngOptions | number = {}): Promise<Buffer> {
  const o = typeof options === 'number' ? { level: options } : options;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new Error(`encodePngAsync: expected a positive integer size, found ${width}x${height}`);
  if (rgb.length !== width * height * 3) throw new Error(`encodePngAsync: expected ${width * height * 3} bytes for ${width}x${height} RGB, found ${rgb.length}`);
  const filter = o.filter ?? PNG_DEFAULTS.filter, level = o.level ?? PNG_DEFAULTS.level, strategy = o.strategy ?? PNG_DEFAULTS.strategy;
  const want = o.parts ?? PNG_DEFAULTS.parts;
  if (!(want === 'auto' || (Number.isInteger(want) && want > 0))) throw new Error(`encodePngAsync: expected parts to be a positive integer or 'auto', found ${want}`);
  const stride = width * 3 + 1, size = stride * height;
  const rows = partRows(height, want === 'auto' ? Math.min(MAX_PARTS, Math.ceil(size / MIN_PART_BYTES)) : want);
  const raw = Buffer.allocUnsafe(size);
  // One output chunk per deflate (zlib's 16 KiB default makes ~200 of them for 1024x1024; on the thread pool each is a round trip: 28 ms where one chunk takes 15).
  const zopts = (bytes: number, finishFlush: number) => ({ level, strategy, finishFlush, chunkSize: Math.max(64, bytes + (bytes >>> 7) + 1024) });
  if (rows.length === 2) {
    filterRowsInto(raw, rgb, width, filter, 0, height);
    const z = await run(zlib.deflate, raw, zopts(size, zlib.constants.Z_FINISH));
    return pngFile(width, height, [], [z], []);
  }
  const jobs: Promise<Buffer>[] = [];
  for (let k = 0; k + 1 < rows.length; k++) {
    filterRowsInto(raw, rgb, width, filter, rows[k], rows[k + 1]);
    const part = raw.subarray(rows[k] * stride, rows[k + 1] * stride);
    jobs.push(run(zlib.deflateRaw, part, zopts(part.length, k + 2 < rows.length ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.Z_FINISH)));
  }
  const adler = adler32(raw);
  const parts = await Promise.all(jobs);
  return pngFile(width, height, zlibHeader(level, strategy), parts, [adler >>> 24, (adler >>> 16) & 0xff, (adler >>> 8) & 0xff, adler & 0xff]);
}
