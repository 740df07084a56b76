/**
 * compiler/quant/bulk.ts against the scalar codecs of formats.ts:
 *   - the table-driven fast encoders equal encodeE4M3 / encodeE2M1 of the fp32 value on millions
 *     of inputs (a stride through all 2^32 fp32 bit patterns, random bit patterns, random values in
 *     the working range, and every rounding boundary ± a few fp32 ulps);
 *   - quantizeFp8 / quantizeNvfp4 equal a straight scalar transcription of their definition;
 *   - a hand-worked NVFP4 example (codes and packing derived by hand below);
 *   - the dequantized error of Gaussian data is within the expected bound.
 */
import { describe, expect, it } from 'vitest';
import {
  amaxOf, amaxSource, decodeSource, decodeSourceAmax, dequantizeFp8, dequantizeNvfp4, encodeE2M1Fast, encodeE4M3Array, encodeE4M3Fast,
  newErrorSums, nvfp4GlobalScale, quantizeFp8, quantizeNvfp4, relativeL2Error, relativeL2FromSums,
} from '../../compiler/quant/bulk.ts';
import { decodeE2M1, decodeE4M3, encodeE2M1, encodeE4M3, fp8Reciprocal } from '../../compiler/quant/formats.ts';
import { f32ToBf16 } from '../../compiler/ir/dtype.ts';

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const fromBits = (b: number): number => { u32[0] = b >>> 0; return f32[0]; };

/** Seeded 32-bit generator (xorshift32). */
function bits32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
}

function gaussian(n: number, seed: number): Float32Array {
  const r = bits32(seed), out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = (r() + 1) / 2 ** 32, u2 = r() / 2 ** 32, rad = Math.sqrt(-2 * Math.log(u1));
    out[i] = rad * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = rad * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Collects mismatches of fast(x) vs want(x), at most 5. */
function mismatches(xs: Iterable<number>, fast: (x: number) => number, want: (x: number) => number): string[] {
  const bad: string[] = [];
  let count = 0;
  for (const x of xs) {
    count++;
    if (fast(x) !== want(x) && bad.length < 5) bad.push(`${x}: fast ${fast(x)}, scalar ${want(x)}`);
  }
  expect(count).toBeGreaterThan(0);
  return bad;
}

function* strideAllBits(step: number): Generator<number> {
  for (let b = 0; b < 2 ** 32; b += step) yield fromBits(b);
  for (let b = 0; b < 2 ** 32; b += step) yield fromBits(b + 0x3a5c7); // other low bits
}
/**
 * Every sign/exponent/top-8-mantissa-bit combination with the low 15 bits zero, one, or only bit 14:
 * the short values (ties, exact values) a random stride almost never hits.
 */
function* shortFloats(): Generator<number> {
  for (let i = 0; i < 1 << 17; i++) {
    yield fromBits(i << 15);
    yield fromBits((i << 15) | 1);
    yield fromBits((i << 15) | 0x4000);
  }
}
function* randomBits(n: number, seed: number): Generator<number> {
  const r = bits32(seed);
  for (let i = 0; i < n; i++) yield fromBits(r());
}
function* randomRange(n: number, seed: number, lo: number, hi: number): Generator<number> {
  const r = bits32(seed);
  for (let i = 0; i < n; i++) {
    const v = Math.fround(2 ** (lo + ((hi - lo) * r()) / 2 ** 32));
    yield r() & 1 ? -v : v;
  }
}
/** Every midpoint between neighbouring representable values, ± up to 3 fp32 ulps, both signs. */
function* aroundBoundaries(values: number[]): Generator<number> {
  for (let i = 0; i + 1 < values.length; i++) {
    for (const v of [(values[i] + values[i + 1]) / 2, values[i]]) {
      f32[0] = v;
      const b = u32[0];
      for (let d = -3; d <= 3; d++) {
        if (b + d < 0) continue;
        yield fromBits(b + d);
        yield -fromBits(b + d);
      }
    }
  }
}

const E4M3_POS = Array.from({ length: 0x7f }, (_, c) => decodeE4M3(c));
const E2M1_POS = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
const SPECIALS = [0, -0, NaN, -NaN, Infinity, -Infinity, 448, 464, 449, 1e38, 6, 6.5, 5, 2 ** -10, 2 ** -149, -(2 ** -149), 3.4e38];

describe('fast encoders equal the scalar codecs', () => {
  const want4 = (x: number): number => encodeE4M3(Math.fround(x));
  const want2 = (x: number): number => encodeE2M1(Math.fround(x));

  it('e4m3: a stride through all fp32 bit patterns (~2.1M values)', () => {
    expect(mismatches(strideAllBits(4099), encodeE4M3Fast, want4)).toEqual([]);
  });
  it('e4m3 and e2m1: all short floats (sign, exponent, 8 mantissa bits; ~400k values each)', () => {
    expect(mismatches(shortFloats(), encodeE4M3Fast, want4)).toEqual([]);
    expect(mismatches(shortFloats(), encodeE2M1Fast, want2)).toEqual([]);
  });
  it('e4m3: 1M random bit patterns, 1M values in 2^-12..2^9, every rounding boundary ± 3 ulps, specials', () => {
    expect(mismatches(randomBits(1_000_000, 7), encodeE4M3Fast, want4)).toEqual([]);
    expect(mismatches(randomRange(1_000_000, 8, -12, 9), encodeE4M3Fast, want4)).toEqual([]);
    expect(mismatches(aroundBoundaries([...E4M3_POS, 464, 480]), encodeE4M3Fast, want4)).toEqual([]);
    expect(mismatches(SPECIALS, encodeE4M3Fast, want4)).toEqual([]);
  });
  it('e2m1: a stride through all fp32 bit patterns, random values, every boundary ± 3 ulps, specials', () => {
    expect(mismatches(strideAllBits(8191), encodeE2M1Fast, want2)).toEqual([]);
    expect(mismatches(randomBits(500_000, 9), encodeE2M1Fast, want2)).toEqual([]);
    expect(mismatches(randomRange(1_000_000, 10, -4, 3), encodeE2M1Fast, want2)).toEqual([]);
    expect(mismatches(aroundBoundaries([...E2M1_POS, 7, 8]), encodeE2M1Fast, want2)).toEqual([]);
    expect(mismatches(SPECIALS, encodeE2M1Fast, want2)).toEqual([]);
  });
  it('encodeE4M3Array equals encodeE4M3 element-wise', () => {
    const x = Float32Array.from(randomRange(10_000, 11, -12, 9));
    const codes = new Uint8Array(x.length + 3);
    encodeE4M3Array(x, codes, 3);
    for (let i = 0; i < x.length; i++) expect(codes[i + 3]).toBe(encodeE4M3(x[i]));
  });
});

// ---- scalar transcriptions of the definitions --------------------------------------------------

function scalarFp8(x: Float32Array, rows: number, cols: number): { codes: number[]; scales: number[] } {
  const codes: number[] = [], scales: number[] = [];
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let j = 0; j < cols; j++) amax = Math.max(amax, Math.abs(x[r * cols + j]));
    let scale = Math.fround(amax / 448);
    if (scale === 0) scale = 1;
    scales.push(scale);
    const recip = fp8Reciprocal(scale);
    for (let j = 0; j < cols; j++) codes.push(encodeE4M3(Math.fround(x[r * cols + j] * recip)));
  }
  return { codes, scales };
}

function scalarNvfp4(x: Float32Array): { nibbles: number[]; scales: number[]; g: number } {
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  let g = Math.fround(amax / 2688);
  if (g === 0) g = 1;
  const nibbles: number[] = [], scales: number[] = [];
  for (let b = 0; b < x.length / 16; b++) {
    let bAmax = 0;
    for (let i = 0; i < 16; i++) bAmax = Math.max(bAmax, Math.abs(x[b * 16 + i]));
    const s = encodeE4M3(Math.fround(bAmax / Math.fround(6 * g)));
    scales.push(s);
    const e = Math.fround(decodeE4M3(s) * g);
    for (let i = 0; i < 16; i++) nibbles.push(e === 0 ? 0 : encodeE2M1(Math.fround(x[b * 16 + i] / e)));
  }
  return { nibbles, scales, g };
}

/** Gaussian rows with varying scales, a zero row, a row of tiny values, exact ties and outliers. */
function testMatrix(rows: number, cols: number, seed: number): Float32Array {
  const x = gaussian(rows * cols, seed);
  const r = bits32(seed + 1);
  for (let i = 0; i < rows; i++) {
    const s = 2 ** ((r() % 24) - 12);
    for (let j = 0; j < cols; j++) x[i * cols + j] *= s;
  }
  x.fill(0, 0, cols); // row 0: zeros
  for (let j = 0; j < cols; j++) x[cols + j] = (j % 3) * 1e-40; // row 1: subnormal fp32
  for (let j = 0; j < cols; j += 7) x[2 * cols + j] = (j % 448) * 0.5; // row 2: e4m3 values and midpoints at scale 1
  x[3 * cols + 5] = 1e4; // an outlier
  return x;
}

describe('quantizeFp8', () => {
  it('equals the scalar definition, codes and scales, and dequantizes to decode·scale', () => {
    const rows = 48, cols = 200;
    const x = testMatrix(rows, cols, 3);
    const q = quantizeFp8(x, rows, cols);
    const want = scalarFp8(x, rows, cols);
    expect(Array.from(q.scales)).toEqual(want.scales);
    expect(Array.from(q.codes)).toEqual(want.codes);
    expect(q.scales[0]).toBe(1); // amax 0 -> scale 1
    const d = dequantizeFp8(q);
    for (let i = 0; i < x.length; i++) expect(d[i]).toBe(Math.fround(decodeE4M3(want.codes[i]) * want.scales[Math.floor(i / cols)]));
  });

  it('rel L2 error of Gaussian data is within 3% and the running sums agree with relativeL2Error', () => {
    const x = gaussian(256 * 1024, 4);
    const sums = newErrorSums();
    const q = quantizeFp8(x, 256, 1024, sums);
    const err = relativeL2Error(x, dequantizeFp8(q));
    expect(err).toBeLessThan(0.03);
    expect(err).toBeGreaterThan(0.01);
    expect(relativeL2FromSums(sums)).toBeCloseTo(err, 6);
    expect(sums.amax).toBe(amaxOf(x));
  });

  it('odd row lengths (the pairwise loop\'s tail) equal the scalar definition', () => {
    for (const cols of [1, 3, 45]) {
      const x = testMatrix(7, cols, cols);
      const q = quantizeFp8(x, 7, cols);
      const want = scalarFp8(x, 7, cols);
      expect(Array.from(q.codes)).toEqual(want.codes);
      expect(Array.from(q.scales)).toEqual(want.scales);
    }
  });

  it('NaN elements are ignored by the amax and encode as 0x7f; infinities saturate', () => {
    const x = Float32Array.from([1, NaN, -2, 0.5, Infinity, 3]);
    const q = quantizeFp8(x, 2, 3);
    expect(q.scales[0]).toBe(Math.fround(2 / 448));
    expect(q.codes[1]).toBe(0x7f);
    expect(q.codes[2]).toBe(0xfe);
    expect(q.scales[1]).toBe(Infinity); // amax Infinity: every finite value becomes 0
    expect(Array.from(q.codes.subarray(3))).toEqual([0, 0x7f, 0]); // Inf/Inf = NaN
  });

  it('rejects a shape that does not match', () => {
    expect(() => quantizeFp8(new Float32Array(10), 3, 3)).toThrow(/does not match/);
  });
});

describe('quantizeNvfp4', () => {
  it('hand-worked example: codes, packing, block scales, dequantized values', () => {
    // Global amax 10.5 makes g = 10.5/2688 = 2^-8 exactly, 6·g = 0.0234375.
    // Block A: amax 10.5 -> s = e4m3(10.5/0.0234375 = 448) = 0x7e; effective scale 448·2^-8 = 1.75,
    //   so x = 1.75·t quantizes t:  6->7, -3->-3 (8|5=13), 0.25 tie->0 (0), 0.75 tie->1 (2),
    //   1.25 tie->1 (2), 1.75 tie->2 (4), 2.5 tie->2 (4), 3.5 tie->4 (6), 5 tie->4 (6), -0.1->-0 (8),
    //   0->0 (0), 4->4 (6), -1.5 (8|3=11), 0.3->0.5 (1), 2.9->3 (5), -5.5->-6 (8|7=15).
    const tA = [6, -3, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, -0.1, 0, 4, -1.5, 0.3, 2.9, -5.5];
    const codesA = [7, 13, 0, 2, 2, 4, 4, 6, 6, 8, 0, 6, 11, 1, 5, 15];
    // Block B: amax 0.7 -> 0.7/0.0234375 = 29.87 -> e4m3 30 (1.875·2^4: e=11, m=7 -> 0x5f);
    //   effective scale 30·2^-8 = 0.1171875; 0.7 -> 5.97 -> 6 (7); -0.35 -> -2.99 -> -3 (13); zeros.
    const xB = [0.7, -0.35, ...Array(14).fill(0)];
    const codesB = [7, 13, ...Array(14).fill(0)];
    // Block C: all zeros -> s = 0; block D: 1e-6 -> 1e-6/0.0234375 < 2^-10 -> s = 0 -> elements 0.
    const x = Float32Array.from([...tA.map((t) => 1.75 * t), ...xB, ...Array(16).fill(0), ...Array(16).fill(1e-6)]);
    const q = quantizeNvfp4(x, 2, 32);
    expect(q.globalScale).toBe(2 ** -8);
    expect(Array.from(q.blockScales)).toEqual([0x7e, 0x5f, 0x00, 0x00]);
    const pack = (c: number[]): number[] => c.flatMap((v, i) => (i % 2 ? [] : [v | (c[i + 1] << 4)]));
    expect(pack(codesA)).toEqual([0xd7, 0x20, 0x42, 0x64, 0x86, 0x60, 0x1b, 0xf5]);
    expect(Array.from(q.packed)).toEqual([...pack(codesA), ...pack(codesB), ...Array(16).fill(0)]);
    const d = dequantizeNvfp4(q);
    expect(Array.from(d.subarray(0, 16))).toEqual([10.5, -5.25, 0, 1.75, 1.75, 3.5, 3.5, 7, 7, -0, 0, 7, -2.625, 0.875, 5.25, -10.5]);
    expect(Array.from(d.subarray(16, 18))).toEqual([6 * 0.1171875, -3 * 0.1171875]);
    expect(Array.from(d.subarray(32))).toEqual(Array(32).fill(0));
  });

  it('equals the scalar definition on varied data (zero rows, subnormals, ties, outliers)', () => {
    const rows = 40, cols = 256;
    const x = testMatrix(rows, cols, 5);
    const q = quantizeNvfp4(x, rows, cols);
    const want = scalarNvfp4(x);
    expect(q.globalScale).toBe(want.g);
    expect(Array.from(q.blockScales)).toEqual(want.scales);
    const nibbles = Array.from({ length: x.length }, (_, i) => (q.packed[i >> 1] >> ((i & 1) * 4)) & 15);
    expect(nibbles).toEqual(want.nibbles);
    const d = dequantizeNvfp4(q);
    for (let i = 0; i < x.length; i++) {
      const e = Math.fround(decodeE4M3(want.scales[i >> 4]) * want.g);
      expect(d[i]).toBe(e === 0 ? 0 : Math.fround(decodeE2M1(want.nibbles[i]) * decodeE4M3(want.scales[i >> 4]) * want.g));
    }
  });

  it('a NaN is ignored by the block amax and the tensor amax, and encodes as e2m1(NaN) = 7', () => {
    const clean = gaussian(32, 12);
    const x = clean.slice();
    x[5] = NaN;
    const q = quantizeNvfp4(x, 1, 32), ref = quantizeNvfp4(Float32Array.from(clean.map((v, i) => (i === 5 ? 0 : v))), 1, 32);
    expect(q.globalScale).toBe(ref.globalScale);
    expect(Array.from(q.blockScales)).toEqual(Array.from(ref.blockScales));
    expect((q.packed[2] >> 4) & 15).toBe(7);
  });

  it('an explicit global scale is used as given (quantizing part of a tensor)', () => {
    const x = gaussian(4 * 64, 6);
    const g = nvfp4GlobalScale(10);
    const whole = quantizeNvfp4(x, 4, 64, g);
    const part = quantizeNvfp4(x.subarray(128), 2, 64, g);
    expect(Array.from(part.packed)).toEqual(Array.from(whole.packed.subarray(64)));
    expect(Array.from(part.blockScales)).toEqual(Array.from(whole.blockScales.subarray(8)));
  });

  it('rel L2 error of Gaussian data is 5-15% and the running sums agree', () => {
    const x = gaussian(256 * 1024, 7);
    const sums = newErrorSums();
    const q = quantizeNvfp4(x, 256, 1024, undefined, sums);
    const err = relativeL2Error(x, dequantizeNvfp4(q));
    expect(err).toBeGreaterThan(0.05);
    expect(err).toBeLessThan(0.15);
    expect(relativeL2FromSums(sums)).toBeCloseTo(err, 6);
    expect(sums.amax).toBe(amaxOf(x));
  });

  it('rejects K not a multiple of 16', () => {
    expect(() => quantizeNvfp4(new Float32Array(40), 1, 40)).toThrow(/multiple of 16/);
  });
});

describe('helpers', () => {
  it('relativeL2Error', () => {
    expect(relativeL2Error([3, 4], [3, 4])).toBe(0);
    expect(relativeL2Error([3, 4], [0, 0])).toBe(1);
    expect(relativeL2Error([0, 0], [0, 0])).toBe(0);
    expect(relativeL2Error([0, 0], [1, 0])).toBe(Infinity);
    expect(() => relativeL2Error([1], [1, 2])).toThrow();
  });

  it('decodeSource and amaxSource read bf16, f16 and f32 bytes exactly', () => {
    const x = Float32Array.from([1.5, -2.25, 0, -0, 3e-39, -448, 65504, NaN, 1e-7, -0.1]);
    const bf = new Uint16Array(x.length), bfBytes = new Uint8Array(bf.buffer);
    x.forEach((v, i) => { bf[i] = f32ToBf16(v); });
    const out = new Float32Array(x.length);
    decodeSource('bfloat16', bfBytes, 0, x.length, out);
    x.forEach((v, i) => { u32[0] = bf[i] << 16; expect(Object.is(out[i], f32[0])).toBe(true); });
    expect(amaxSource('bfloat16', bfBytes, 0, x.length)).toBe(amaxOf(out));
    // decodeSourceAmax at aligned and unaligned offsets, even and odd counts, with and without NaN
    const padded = new Uint8Array(2 + bfBytes.length);
    padded.set(bfBytes, 2);
    for (const [bytes, off] of [[bfBytes, 0], [padded, 2], [bfBytes, 2], [padded, 4]] as const) {
      for (const n of [(bytes.length - off) / 2, 7, 6, 3]) {
        const got = new Float32Array(n), want = new Float32Array(n);
        decodeSource('bfloat16', bytes, off, n, want);
        const wantAmax = amaxOf(want);
        expect(decodeSourceAmax('bfloat16', bytes, off, n, got), `off ${off} n ${n}`).toBe(wantAmax);
        expect(Array.from(got)).toEqual(Array.from(want));
        expect(amaxSource('bfloat16', bytes, off, n)).toBe(wantAmax);
        const first = (off - (bytes === padded ? 2 : 0)) / 2;
        for (let i = 0; i < n; i++) { u32[0] = bf[first + i] << 16; expect(Object.is(want[i], f32[0])).toBe(true); }
      }
    }
    // float16: 1.5, -2.25, 65504 (max), a subnormal (2^-24), NaN, -Inf
    const h = Uint16Array.from([0x3e00, 0xc080, 0x7bff, 0x0001, 0x7e00, 0xfc00]);
    decodeSource('float16', new Uint8Array(h.buffer), 0, h.length, out);
    expect(Array.from(out.subarray(0, 6))).toEqual([1.5, -2.25, 65504, 2 ** -24, NaN, -Infinity]);
    expect(amaxSource('float16', new Uint8Array(h.buffer), 0, 4)).toBe(65504);
    expect(amaxSource('float16', new Uint8Array(h.buffer), 0, 6)).toBe(Infinity);
    expect(amaxSource('float16', new Uint8Array(h.buffer), 0, 5)).toBe(65504); // NaN ignored
    expect(amaxSource('float16', new Uint8Array(h.buffer), 4, 3)).toBe(65504); // odd count, NaN last
    expect(amaxSource('float16', new Uint8Array(h.buffer), 6, 1)).toBe(2 ** -24);
    // float32 at an unaligned offset
    const raw = new Uint8Array(1 + 4 * x.length);
    raw.set(new Uint8Array(x.buffer), 1);
    decodeSource('float32', raw, 1, x.length, out);
    x.forEach((v, i) => expect(Object.is(out[i], v)).toBe(true));
    expect(amaxSource('float32', raw, 1, x.length)).toBe(65504);
  });
});
