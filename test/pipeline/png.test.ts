/**
 * runtime/pipeline/png.ts (the PNG encoder of the server and the bench, no sharp) read back by sharp
 * (libvips' decoder) and by inflate + unfiltering here, for every filter and strategy: the same
 * pixels; the defaults, and the async encoder's bytes equal to the sync one's; the CRC-32 of the
 * check string; sizes refused by name. And the
 * GPU runtime's bfloat16 staging (runtime/gpu/model.ts): the typed-array conversion gives the bits
 * dtype.ts's f32ToBf16 gives (ties to even, NaN, infinities, subnormals), decoding is exact, and an
 * input is re-used without a copy only where no launch argument overlaps its arena bytes.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { bf16ToF32, f32ToBf16 } from '../../compiler/ir/dtype.ts';
import { bf16Tensor, deviceBytes, f32ToBf16Array, intactInputs } from '../../runtime/gpu/model.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { inflateSync, constants as Z } from 'node:zlib';
import { PNG_DEFAULTS, type PngFilter, crc32, crc32Table, encodePng, encodePngAsync } from '../../runtime/pipeline/png.ts';

/** A PNG decoder for what encodePng writes (one IDAT, 8-bit RGB, filters 0-2): node:zlib inflate, then each row unfiltered. */
function decodePng(png: Buffer): { width: number; height: number; rgb: Uint8Array; filters: Set<number> } {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  let at = 8, width = 0, height = 0;
  const idat: Buffer[] = [];
  for (;;) {
    const len = png.readUInt32BE(at), type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + len);
    expect(png.readUInt32BE(at + 8 + len)).toBe(crc32(png.subarray(at + 4, at + 8 + len)));
    if (type === 'IHDR') { width = data.readUInt32BE(0); height = data.readUInt32BE(4); expect([...data.subarray(8)]).toEqual([8, 2, 0, 0, 0]); }
    if (type === 'IDAT') idat.push(data);
    at += 12 + len;
    if (type === 'IEND') break;
  }
  expect(at).toBe(png.length);
  const raw = inflateSync(Buffer.concat(idat)), stride = width * 3;
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

describe('encodePng', () => {
  it('writes a PNG that decodes to the same pixels', async () => {
    const width = 37, height = 23;
    const rgb = new Uint8Array(width * height * 3);
    let s = 7;
    for (let i = 0; i < rgb.length; i++) rgb[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    const png = encodePng(rgb, width, height);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels, info.format]).toEqual([width, height, 3, 'raw']);
    expect(Buffer.from(data).equals(Buffer.from(rgb))).toBe(true);
  });

  it('every filter and strategy decodes (node:zlib inflate + unfiltering) to the same pixels: odd widths, unaligned input', async () => {
    for (const [width, height] of [[1, 1], [5, 3], [64, 9], [37, 23]]) {
      const buf = new Uint8Array(width * height * 3 + 1);
      let s = width * 31 + height;
      for (let i = 0; i < buf.length; i++) buf[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
      for (const rgb of [buf.subarray(0, buf.length - 1), buf.subarray(1)]) { // byteOffset 0 and 1 (the 4-byte path and the byte path)
        for (const filter of ['none', 'sub', 'up'] as PngFilter[]) for (const strategy of [Z.Z_DEFAULT_STRATEGY, Z.Z_RLE]) {
          const png = encodePng(rgb, width, height, { filter, strategy, level: 3 });
          const d = decodePng(png);
          expect([d.width, d.height]).toEqual([width, height]);
          expect(Buffer.from(d.rgb).equals(Buffer.from(rgb))).toBe(true);
          expect([...d.filters]).toEqual([{ none: 0, sub: 1, up: 2 }[filter]]);
        }
      }
    }
  });

  it('defaults: filter up, Z_RLE; the async encoder (the server) writes the same bytes as the bench\'s', async () => {
    expect(PNG_DEFAULTS).toEqual({ level: 6, strategy: Z.Z_RLE, filter: 'up' });
    const width = 40, height = 30;
    const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 7 + (i >> 6)) & 0xff);
    const png = encodePng(rgb, width, height);
    expect(decodePng(png).filters).toEqual(new Set([2]));
    expect(encodePng(rgb, width, height, PNG_DEFAULTS).equals(png)).toBe(true);
    expect((await encodePngAsync(rgb, width, height)).equals(png)).toBe(true);
    expect(encodePng(rgb, width, height, { level: 1 }).equals(png)).toBe(true); // Z_RLE: the level does not change the bytes
    expect(encodePng(rgb, width, height, 6).equals(encodePng(rgb, width, height, { level: 6 }))).toBe(true);
  });

  it('CRC-32 as PNG defines it; bad sizes are refused', async () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Table(check)).toBe(0xcbf43926); // the fallback where zlib has no crc32
    const big = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919) & 0xff);
    expect(crc32Table(big)).toBe(crc32(big));
    expect(() => encodePng(new Uint8Array(11), 2, 2)).toThrow('encodePng: expected 12 bytes for 2x2 RGB, found 11');
    expect(() => encodePng(new Uint8Array(0), 0, 1)).toThrow('encodePng: expected a positive integer size, found 0x1');
    await expect(encodePngAsync(new Uint8Array(11), 2, 2)).rejects.toThrow('encodePng: expected 12 bytes for 2x2 RGB, found 11');
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
