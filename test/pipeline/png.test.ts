/**
 * runtime/pipeline/png.ts (the PNG encoder of the server and the bench, no sharp) read back by sharp
 * (libvips' decoder) and by inflate + unfiltering here, for every filter and strategy and for 1-8
 * parts deflated in parallel (heights the parts do not divide, one row, more parts than rows): the
 * same pixels. The IDAT is one valid zlib stream: inflateSync checks its Adler-32 (a corrupted one
 * is refused), its header is zlib's, and in parts it is exactly the header, each row range's raw
 * deflate (sync flush, the last finished) and zlib's Adler-32 of the whole; one part is zlib's own
 * deflate of the filtered rows. Adler-32 and CRC-32 against zlib; sizes and part counts refused by
 * name. And the
 * GPU runtime's bfloat16 staging (runtime/gpu/model.ts): the typed-array conversion gives the bits
 * dtype.ts's f32ToBf16 gives (ties to even, NaN, infinities, subnormals), decoding is exact, and an
 * input is re-used without a copy only where no launch argument overlaps its arena bytes.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f32ToBf16 } from '../../compiler/ir/dtype.ts';
import { bf16Tensor, deviceBytes, f32ToBf16Array, intactInputs } from '../../runtime/gpu/model.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { deflateRawSync, deflateSync, inflateSync, constants as Z } from 'node:zlib';
import { MAX_PARTS, MIN_PART_BYTES, PNG_DEFAULTS, type PngFilter, adler32, crc32, crc32Table, encodePngAsync, filterRows, partRows } from '../../runtime/pipeline/png.ts';

/** The chunks of a PNG (each CRC checked), the IHDR size and the IDAT data. */
function chunks(png: Buffer): { width: number; height: number; idat: Buffer } {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  let at = 8, width = 0, height = 0;
  const idat: Buffer[] = [], types: string[] = [];
  for (;;) {
    const len = png.readUInt32BE(at), type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    expect(png.readUInt32BE(at + 8 + len)).toBe(crc32(png.subarray(at + 4, at + 8 + len)));
    types.push(type);
    if (type === 'IHDR') { width = data.readUInt32BE(0); height = data.readUInt32BE(4); expect([...data.subarray(8)]).toEqual([8, 2, 0, 0, 0]); }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
    if (type === 'IEND') break;
  }
  expect(at).toBe(png.length);
  expect(types).toEqual(['IHDR', 'IDAT', 'IEND']);
  return { width, height, idat: Buffer.concat(idat) };
}

/** A PNG decoder for what encodePngAsync writes (one IDAT, 8-bit RGB, filters 0-2): node:zlib inflate (which checks the Adler-32), then each row unfiltered. */
function decodePng(png: Buffer): { width: number; height: number; rgb: Uint8Array; filters: Set<number> } {
  const { width, height, idat } = chunks(png);
  const raw = inflateSync(idat), stride = width * 3;
  expect(raw.length).toBe((stride + 1) * height);
  const rgb = new Uint8Array(stride * height), filters = new Set<number>();
  for (let y = 0; y < height; y++) {
    const t = raw[y * (stride + 1)];
    filters.add(t);
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x], a = x >= 3 ? rgb[y * stride + x - 3] : 0, b = y ? rgb[(y - 1) * stride + x] : 0;
      rgb[y * stride + x] = (v + (t === 0 ? 0 : t === 1 ? a : t === 2 ? b : NaN)) & 0xff;
    }
  }
  return { width, height, rgb, filters };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) out[i] = (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}

/** Smooth rows with a little noise (what filter up and Z_RLE compress), `height` rows of `width` pixels. */
function smoothImage(width: number, height: number, seed: number): Uint8Array {
  const noise = randomBytes(width * height * 3, seed);
  return Uint8Array.from(noise, (v, i) => ((i % (width * 3)) + 2 * Math.floor(i / (width * 3)) + (v & 3)) & 0xff);
}

describe('encodePngAsync', () => {
  it('writes a PNG that sharp decodes to the same pixels, in one part and in several', async () => {
    for (const [width, height, parts] of [[37, 23, 1], [37, 23, 4], [300, 301, 3], [19, 1, 4]] as const) {
      const rgb = smoothImage(width, height, width + height);
      const png = await encodePngAsync(rgb, width, height, { parts });
      const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels, info.format]).toEqual([width, height, 3, 'raw']);
      expect(Buffer.from(data).equals(Buffer.from(rgb))).toBe(true);
    }
  });

  it('every filter, strategy and part count decodes (node:zlib inflate + unfiltering) to the same pixels: odd widths, one row, unaligned input', async () => {
    for (const [width, height] of [[1, 1], [5, 3], [64, 9], [37, 23], [16, 1], [8, 2]]) {
      const buf = randomBytes(width * height * 3 + 1, width * 31 + height);
      for (const rgb of [buf.subarray(0, buf.length - 1), buf.subarray(1)]) { // byteOffset 0 and 1 (the 4-byte path and the byte path)
        for (const filter of ['none', 'sub', 'up'] as PngFilter[]) for (const strategy of [Z.Z_DEFAULT_STRATEGY, Z.Z_RLE]) for (const parts of [1, 2, 3, 4, 8]) {
          const png = await encodePngAsync(rgb, width, height, { filter, strategy, level: 3, parts });
          const d = decodePng(png);
          expect([d.width, d.height]).toEqual([width, height]);
          expect(Buffer.from(d.rgb).equals(Buffer.from(rgb))).toBe(true);
          expect([...d.filters]).toEqual([{ none: 0, sub: 1, up: 2 }[filter]]);
        }
      }
    }
  });

  it('row ranges: as even as rows allow, never more than the rows', () => {
    expect(partRows(23, 4)).toEqual([0, 6, 12, 18, 23]);
    expect(partRows(1024, 4)).toEqual([0, 256, 512, 768, 1024]);
    expect(partRows(9, 4)).toEqual([0, 3, 5, 7, 9]);
    expect(partRows(3, 8)).toEqual([0, 1, 2, 3]);
    expect(partRows(1, 4)).toEqual([0, 1]);
    expect(partRows(5, 1)).toEqual([0, 5]);
  });

  it('in parts the IDAT is one zlib stream: zlib\'s header, each range\'s raw deflate (sync flush; the last finished), zlib\'s Adler-32 of the whole', async () => {
    const width = 37, height = 23;
    const rgb = smoothImage(width, height, 5);
    const raw = filterRows(rgb, width, height, 'up'), stride = width * 3 + 1;
    for (const [level, strategy] of [[6, Z.Z_RLE], [1, Z.Z_DEFAULT_STRATEGY], [3, Z.Z_DEFAULT_STRATEGY], [6, Z.Z_DEFAULT_STRATEGY], [9, Z.Z_FILTERED], [-1, Z.Z_DEFAULT_STRATEGY]]) {
      const whole = deflateSync(raw, { level, strategy });
      const rows = partRows(height, 4);
      const expected = Buffer.concat([
        whole.subarray(0, 2), // zlib's header for this level and strategy
        ...rows.slice(1).map((end, k) => deflateRawSync(raw.subarray(rows[k] * stride, end * stride), { level, strategy, finishFlush: k + 2 < rows.length ? Z.Z_SYNC_FLUSH : Z.Z_FINISH })),
        whole.subarray(whole.length - 4), // zlib's Adler-32 of the whole
      ]);
      const { idat } = chunks(await encodePngAsync(rgb, width, height, { level, strategy, parts: 4 }));
      expect(idat.equals(expected)).toBe(true);
      expect(inflateSync(idat).equals(raw)).toBe(true);
      expect(idat.equals(chunks(await encodePngAsync(rgb, width, height, { level, strategy, parts: 1 })).idat)).toBe(false);
      // one part: zlib's deflate of the filtered rows, the bytes of the encoder before parts
      expect(chunks(await encodePngAsync(rgb, width, height, { level, strategy, parts: 1 })).idat.equals(whole)).toBe(true);
    }
  });

  it('the Adler-32 is checked: a corrupted one, or a corrupted part, fails inflate', async () => {
    const width = 64, height = 30;
    const rgb = smoothImage(width, height, 9);
    for (const parts of [1, 3]) {
      const { idat } = chunks(await encodePngAsync(rgb, width, height, { parts }));
      expect(() => inflateSync(idat)).not.toThrow();
      const bad = Buffer.from(idat);
      bad[bad.length - 1] ^= 1;
      expect(() => inflateSync(bad)).toThrow(/incorrect data check/);
      const sum = Buffer.from(idat);
      sum[sum.length - 3] ^= 0x10; // the high half (b) of the Adler-32
      expect(() => inflateSync(sum)).toThrow(/incorrect data check/);
    }
  });

  it('Adler-32 as zlib computes it, across its 5552-byte reductions, and continued', () => {
    for (const n of [0, 1, 3, 4, 15, 16, 17, 5551, 5552, 5553, 70_001]) {
      for (const bytes of [randomBytes(n, n + 1), new Uint8Array(n).fill(255)]) {
        const z = deflateSync(bytes, { level: 0 });
        expect(adler32(bytes)).toBe(z.readUInt32BE(z.length - 4));
        const cut = n >>> 1;
        expect(adler32(bytes.subarray(cut), adler32(bytes.subarray(0, cut)))).toBe(adler32(bytes));
      }
    }
    expect(adler32(new TextEncoder().encode('Wikipedia'))).toBe(0x11e60398);
  });

  it("defaults: filter up, Z_RLE, 'auto' parts; Z_RLE bytes do not depend on the level; the same input gives the same bytes", async () => {
    expect(PNG_DEFAULTS).toEqual({ level: 6, strategy: Z.Z_RLE, filter: 'up', parts: 'auto' });
    expect(MAX_PARTS).toBe(Number(process.env.UV_THREADPOOL_SIZE) || 4); // libuv's pool threads
    const width = 40, height = 30;
    const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 7 + (i >> 6)) & 0xff);
    const png = await encodePngAsync(rgb, width, height);
    expect(decodePng(png).filters).toEqual(new Set([2]));
    expect((await encodePngAsync(rgb, width, height, PNG_DEFAULTS)).equals(png)).toBe(true);
    expect((await encodePngAsync(rgb, width, height, { parts: 1 })).equals(png)).toBe(true); // 'auto' on a small image: one part
    expect((await encodePngAsync(rgb, width, height, { level: 1 })).equals(png)).toBe(true);
    expect((await encodePngAsync(rgb, width, height, 6)).equals(await encodePngAsync(rgb, width, height, { level: 6 }))).toBe(true);
    // 'auto' on a larger image: MAX_PARTS parts, no fewer than MIN_PART_BYTES each
    const w = 512, h = 512, big = smoothImage(w, h, 3);
    const auto = Math.min(MAX_PARTS, Math.ceil(((w * 3 + 1) * h) / MIN_PART_BYTES));
    const bigPng = await encodePngAsync(big, w, h);
    expect(bigPng.equals(await encodePngAsync(big, w, h, { parts: auto }))).toBe(true);
    expect(bigPng.equals(await encodePngAsync(big, w, h))).toBe(true);
    expect(Buffer.from(decodePng(bigPng).rgb).equals(Buffer.from(big))).toBe(true);
    for (const parts of [2, 4]) expect(Buffer.from(decodePng(await encodePngAsync(big, w, h, { parts })).rgb).equals(Buffer.from(big))).toBe(true);
  });

  it('CRC-32 as PNG defines it; bad sizes and part counts are refused', async () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Table(check)).toBe(0xcbf43926); // the fallback where zlib has no crc32
    const big = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919) & 0xff);
    expect(crc32Table(big)).toBe(crc32(big));
    await expect(encodePngAsync(new Uint8Array(11), 2, 2)).rejects.toThrow('encodePngAsync: expected 12 bytes for 2x2 RGB, found 11');
    await expect(encodePngAsync(new Uint8Array(0), 0, 1)).rejects.toThrow('encodePngAsync: expected a positive integer size, found 0x1');
    await expect(encodePngAsync(new Uint8Array(12), 2, 2, { parts: 0 })).rejects.toThrow("encodePngAsync: expected parts to be a positive integer or 'auto', found 0");
    await expect(encodePngAsync(new Uint8Array(12), 2, 2, { parts: 1.5 })).rejects.toThrow("encodePngAsync: expected parts to be a positive integer or 'auto', found 1.5");
  });
});

describe('bfloat16 staging (runtime/gpu/model.ts)', () => {
  it('the typed-array conversion equals f32ToBf16 on every kind of value', () => {
    const special = [0, -0, 1, -1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -9, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, 1e-40, -1e-45, 65504, 0.1];
    const x = new Float32Array(special.length + 1000);
    x.set(special);
    let s = 3;
    for (let i = special.length; i < x.length; i++) x[i] = ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 2 ** ((i % 60) - 30);
    expect(Array.from(f32ToBf16Array(x))).toEqual(Array.from(x, f32ToBf16));
    expect(Array.from(new Uint16Array(deviceBytes(new Tensor('float32', [x.length], x), 'bfloat16').buffer))).toEqual(Array.from(x, f32ToBf16));
  });

  it('decoding bfloat16 bytes is exact and keeps the dtype (values in float32 storage)', () => {
    const bits = Uint16Array.of(0x3f80, 0xbf80, 0x7f80, 0x7fc0, 0x0001, 0x4049);
    const t = bf16Tensor([2, 3], new Uint8Array(bits.buffer));
    expect(t.dtype).toBe('bfloat16');
    expect(t.shape).toEqual([2, 3]);
    expect(Array.from(t.data as Float32Array)).toEqual(Array.from(bits, bf16ToF32));
  });
});

describe('inputs a run leaves intact (runtime/gpu/model.ts)', () => {
  it('an input is intact unless some launch argument in the arena overlaps its bytes', () => {
    const m = {
      io: { inputs: [{ name: 'a', dtype: 'float32', shape: [4], offset: 0, bytes: 16 }, { name: 'b', dtype: 'float32', shape: [4], offset: 16, bytes: 16 }] },
      values: { a: 'float32[4]', b: 'float32[4]', x: 'float32[4]', y: 'bfloat16[2]' },
      launchPlan: [
        { kind: 'kernel', node: 'n1', kernel: 'k', grid: 1, block: 1, sharedBytes: 0, args: [{ value: 'a', where: 'input' }, { value: 'x', where: 'arena', offset: 32 }] },
        { kind: 'kernel', node: 'n2', kernel: 'k', grid: 1, block: 1, sharedBytes: 0, args: [{ value: 'x', where: 'arena', offset: 32 }, { value: 'y', where: 'arena', offset: 28 }] },
      ],
    } as unknown as Parameters<typeof intactInputs>[0];
    expect([...intactInputs(m)]).toEqual(['a']); // y [28, 32) overlaps b [16, 32)
    (m.launchPlan[1].args[1] as { offset: number }).offset = 48;
    expect([...intactInputs(m)].sort()).toEqual(['a', 'b']);
  });
});
