/**
 * Exhaustive tests of the scalar codecs in compiler/quant/formats.ts against an independent
 * oracle written here from the bit-level definitions, sharing no code with formats.ts:
 *
 *   e4m3fn code c = s eeee mmm: e = 0 -> (m/8)·2⁻⁶ (subnormal), else (1 + m/8)·2^(e−7);
 *          s=1 negates (0x80 is −0); 0x7f / 0xff are NaN; no infinities; max 448 (0x7e).
 *   e2m1   code c = s ee m: e = 0 -> m·0.5, else (1 + m/2)·2^(e−1); s=1 negates.
 *
 * Rounding oracle: brute force over every finite non-negative code, keeping the value nearest to
 * |x|; on an exact tie the code with the even mantissa (even code, since the mantissa is the low
 * bits) wins; |x| beyond the largest finite value saturates to it (satfinite); the sign of x is kept
 * (also for results that round to zero, giving −0).
 */
import { describe, expect, it } from 'vitest';
import { f4e2m1ToF32, f8ToF32 } from '../../compiler/ir/dtype.ts';
import {
  E2M1_MAX, E4M3_MAX, decodeE2M1, decodeE4M3, encodeE2M1, encodeE4M3, fp8Reciprocal, rne, roundE2M1, roundE4M3, roundE4M3Scaled,
} from '../../compiler/quant/formats.ts';

// ---- oracle ---------------------------------------------------------------------------------

function oracleDecodeE4M3(c: number): number {
  const s = (c >> 7) & 1, e = (c >> 3) & 15, m = c & 7;
  if (e === 15 && m === 7) return NaN;
  const mag = e === 0 ? m * 2 ** -9 : (8 + m) * 2 ** (e - 10);
  return s ? -mag : mag;
}

function oracleDecodeE2M1(c: number): number {
  const s = (c >> 3) & 1, e = (c >> 1) & 3, m = c & 1;
  const mag = e === 0 ? m * 0.5 : (2 + m) * 2 ** (e - 2);
  return s ? -mag : mag;
}

/** Nearest code among the given non-negative codes (ascending values), ties to even code. */
function oracleNearest(x: number, codes: number[], decode: (c: number) => number, signBit: number): number {
  const a = Math.abs(x);
  const sign = x < 0 || Object.is(x, -0) ? 1 : 0;
  const top = codes[codes.length - 1];
  let best = -1, bestD = Infinity;
  if (a >= decode(top)) best = top; // saturate (satfinite)
  else {
    for (const c of codes) {
      const d = Math.abs(a - decode(c));
      if (d < bestD || (d === bestD && (c & 1) === 0)) { best = c; bestD = d; }
    }
  }
  return sign ? best | signBit : best;
}

const E4M3_POS = Array.from({ length: 0x7f }, (_, i) => i); // 0x00..0x7e, ascending values
const E2M1_POS = Array.from({ length: 8 }, (_, i) => i);

const oracleEncodeE4M3 = (x: number): number => (Number.isNaN(x) ? 0x7f : oracleNearest(x, E4M3_POS, oracleDecodeE4M3, 0x80));
const oracleEncodeE2M1 = (x: number): number => oracleNearest(x, E2M1_POS, oracleDecodeE2M1, 8);

/** Next double above / below (positive finite x). */
const f64 = new Float64Array(1), u64 = new BigUint64Array(f64.buffer);
function nextUp(x: number): number { if (x === 0) return Number.MIN_VALUE; f64[0] = x; u64[0] += x > 0 ? 1n : -1n; return f64[0]; }
function nextDown(x: number): number { if (x === 0) return -Number.MIN_VALUE; f64[0] = x; u64[0] += x > 0 ? -1n : 1n; return f64[0]; }
/** Next float32 above / below a positive float32. */
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
function f32Up(x: number): number { f32[0] = x; u32[0] += 1; return f32[0]; }
function f32Down(x: number): number { f32[0] = x; u32[0] -= 1; return f32[0]; }

function same(a: number, b: number): boolean { return Object.is(a, b); }

/** Checks round/encode at x against the oracle (with both signs); returns a failure note or ''. */
function checkE4M3(x: number): string {
  for (const v of [x, -x]) {
    const code = oracleEncodeE4M3(v);
    const want = oracleDecodeE4M3(code);
    const gotCode = encodeE4M3(v), got = roundE4M3(v);
    if (gotCode !== code || !same(got, want)) return `x=${v}: want code 0x${code.toString(16)} (${want}), got 0x${gotCode.toString(16)} (${got})`;
  }
  return '';
}

function checkE2M1(x: number): string {
  for (const v of [x, -x]) {
    const code = oracleEncodeE2M1(v);
    const want = oracleDecodeE2M1(code);
    const gotCode = encodeE2M1(v), got = roundE2M1(v);
    if (gotCode !== code || !same(got, want)) return `x=${v}: want code ${code} (${want}), got ${gotCode} (${got})`;
  }
  return '';
}

function failures(xs: Iterable<number>, check: (x: number) => string): string[] {
  const out: string[] = [];
  for (const x of xs) {
    const f = check(x);
    if (f && out.length < 10) out.push(f);
  }
  return out;
}

/** Seeded uniform [0,1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// ---- e4m3 -------------------------------------------------------------------------------------

describe('e4m3fn', () => {
  it('oracle table sanity: hand-checked codes', () => {
    expect(oracleDecodeE4M3(0x00)).toBe(0);
    expect(Object.is(oracleDecodeE4M3(0x80), -0)).toBe(true);
    expect(oracleDecodeE4M3(0x01)).toBe(2 ** -9);
    expect(oracleDecodeE4M3(0x07)).toBe(7 * 2 ** -9);
    expect(oracleDecodeE4M3(0x08)).toBe(2 ** -6);
    expect(oracleDecodeE4M3(0x38)).toBe(1);
    expect(oracleDecodeE4M3(0x3c)).toBe(1.5);
    expect(oracleDecodeE4M3(0x7e)).toBe(448);
    expect(oracleDecodeE4M3(0xfe)).toBe(-448);
    expect(oracleDecodeE4M3(0x7f)).toBeNaN();
    expect(oracleDecodeE4M3(0xff)).toBeNaN();
  });

  it('decodes all 256 codes as the bit formula says (and as dtype.ts f8ToF32)', () => {
    for (let c = 0; c < 256; c++) {
      const want = oracleDecodeE4M3(c);
      expect(same(decodeE4M3(c), want), `code 0x${c.toString(16)}`).toBe(true);
      expect(same(f8ToF32(c, 'float8e4m3fn'), want), `f8ToF32 0x${c.toString(16)}`).toBe(true);
    }
    // Only the two NaN codes are NaN; the values are strictly increasing over 0x00..0x7e.
    const nan = [...Array(256).keys()].filter((c) => Number.isNaN(decodeE4M3(c)));
    expect(nan).toEqual([0x7f, 0xff]);
    for (let c = 1; c < 0x7f; c++) expect(decodeE4M3(c)).toBeGreaterThan(decodeE4M3(c - 1));
    expect(E4M3_MAX).toBe(448);
  });

  it('every finite code round-trips through encode and round', () => {
    for (let c = 0; c < 256; c++) {
      if (c === 0x7f || c === 0xff) continue;
      const v = oracleDecodeE4M3(c);
      expect(encodeE4M3(v), `code 0x${c.toString(16)}`).toBe(c);
      expect(same(roundE4M3(v), v), `value ${v}`).toBe(true);
    }
  });

  it('rounds every midpoint between neighbours to the even mantissa', () => {
    for (let c = 0; c < 0x7e; c++) {
      const lo = oracleDecodeE4M3(c), hi = oracleDecodeE4M3(c + 1);
      const mid = (lo + hi) / 2;
      const even = c % 2 === 0 ? c : c + 1;
      expect(encodeE4M3(mid), `mid ${mid} of 0x${c.toString(16)}/0x${(c + 1).toString(16)}`).toBe(even);
      expect(encodeE4M3(-mid)).toBe(even | 0x80);
      expect(same(roundE4M3(mid), oracleDecodeE4M3(even))).toBe(true);
    }
  });

  it('values just above / below every midpoint go to the nearer neighbour', () => {
    for (let c = 0; c < 0x7e; c++) {
      const lo = oracleDecodeE4M3(c), hi = oracleDecodeE4M3(c + 1);
      const mid = (lo + hi) / 2;
      for (const below of [nextDown(mid), f32Down(mid)]) expect(encodeE4M3(below), `${below}`).toBe(c);
      for (const above of [nextUp(mid), f32Up(mid)]) expect(encodeE4M3(above), `${above}`).toBe(c + 1);
      expect(encodeE4M3(-nextDown(mid))).toBe(c | 0x80);
      expect(encodeE4M3(-nextUp(mid))).toBe((c + 1) | 0x80);
    }
  });

  it('matches the oracle on a dense sweep between every pair of neighbours and just around every code', () => {
    const xs: number[] = [];
    for (let c = 0; c < 0x7e; c++) {
      const lo = oracleDecodeE4M3(c), hi = oracleDecodeE4M3(c + 1);
      for (let i = 0; i <= 64; i++) xs.push(lo + ((hi - lo) * i) / 64);
      xs.push(nextUp(lo), nextDown(hi), f32Up(lo || 2 ** -149), f32Down(hi));
    }
    expect(failures(xs, checkE4M3)).toEqual([]);
  });

  it('matches the oracle on 200k random values (log-uniform 2^-14..2^10 and uniform)', () => {
    const r = rng(1);
    const xs: number[] = [];
    for (let i = 0; i < 100_000; i++) xs.push(2 ** (r() * 24 - 14));
    for (let i = 0; i < 50_000; i++) xs.push(Math.fround(r() * 500));
    for (let i = 0; i < 50_000; i++) xs.push(r() * 2 ** -5);
    expect(failures(xs, checkE4M3)).toEqual([]);
  });

  it('saturates to ±448 (satfinite), including infinities', () => {
    for (const x of [448, nextUp(448), 449, 463.99, 464, 465, 480, 512, 1e9, Number.MAX_VALUE, Infinity]) {
      expect(roundE4M3(x), `${x}`).toBe(448);
      expect(encodeE4M3(x), `${x}`).toBe(0x7e);
      expect(roundE4M3(-x)).toBe(-448);
      expect(encodeE4M3(-x)).toBe(0xfe);
    }
    // Just below the max: the 416/448 midpoint (432) ties to 448 (mantissa 110 is even).
    expect(roundE4M3(432)).toBe(448);
    expect(roundE4M3(nextDown(432))).toBe(416);
  });

  it('NaN -> NaN (code 0x7f), signed zeros and underflow keep their sign', () => {
    expect(roundE4M3(NaN)).toBeNaN();
    expect(encodeE4M3(NaN)).toBe(0x7f);
    expect(encodeE4M3(-NaN)).toBe(0x7f);
    expect(same(roundE4M3(0), 0)).toBe(true);
    expect(same(roundE4M3(-0), -0)).toBe(true);
    expect(encodeE4M3(0)).toBe(0x00);
    expect(encodeE4M3(-0)).toBe(0x80);
    // Below half the smallest subnormal (2^-10, a tie with 0 -> 0) underflows to a signed zero.
    for (const x of [2 ** -10, 2 ** -11, 1e-30, Number.MIN_VALUE]) {
      expect(same(roundE4M3(x), 0), `${x}`).toBe(true);
      expect(same(roundE4M3(-x), -0), `${-x}`).toBe(true);
      expect(encodeE4M3(-x)).toBe(0x80);
    }
    expect(roundE4M3(nextUp(2 ** -10))).toBe(2 ** -9);
    expect(encodeE4M3(3 * 2 ** -10)).toBe(0x02); // 1.5·2^-9 ties to 2·2^-9 (even)
    expect(encodeE4M3(5 * 2 ** -10)).toBe(0x02); // 2.5·2^-9 ties to 2·2^-9 (even)
    expect(encodeE4M3(15 * 2 ** -10)).toBe(0x08); // 7.5·2^-9 ties to 2^-6 (code 8, even)
  });

  it('rne rounds half to even for non-negative inputs', () => {
    expect([0, 0.5, 1, 1.5, 2, 2.5, 3.5, 4.25, 4.75, 2 ** 52 + 2].map(rne)).toEqual([0, 0, 1, 2, 2, 2, 4, 4, 5, 2 ** 52 + 2]);
  });
});

// ---- e2m1 -------------------------------------------------------------------------------------

describe('fp8Reciprocal: 1 / s to 24 bits, the exponent unbounded', () => {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  const float = (bits: number) => { u[0] = bits; return f[0]; };
  it('is fp32 1 / s wherever that is finite: 100 000 random normal and subnormal scales from 2^-126', () => {
    let state = 12345;
    for (let i = 0; i < 100_000; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      const s = float(0x00800000 + (state % (0x7f000000 - 0x00800000))); // 2^-126 .. below 2^127
      expect(fp8Reciprocal(s)).toBe(Math.fround(1 / s));
    }
  });
  it('keeps 24 bits past fp32\'s range (subnormal scales): powers of two exactly, others rounded to nearest', () => {
    expect(fp8Reciprocal(2 ** -149)).toBe(2 ** 149);
    expect(fp8Reciprocal(2 ** -127)).toBe(2 ** 127);
    expect(fp8Reciprocal(3 * 2 ** -149)).toBe(Math.fround(4 / 3) * 2 ** 147); // 2^149 / 3 = (4/3)·2^147
    expect(fp8Reciprocal(5 * 2 ** -149)).toBe(Math.fround(8 / 5) * 2 ** 146);
    expect(Number.isFinite(fp8Reciprocal(float(1)))).toBe(true);
  });
  it('quantizes by the product, which can differ from the quotient by a code at an e4m3 rounding boundary', () => {
    // s = fp32(11/7), x = fp32(1.1875 · s): the quotient is the midpoint 1.1875 of 1.125 and 1.25 (ties to even: 1.25);
    // the product with fp32(1 / s) lands an ulp below it: 1.125.
    const s = Math.fround(11 / 7), x = Math.fround(1.1875 * s), r = fp8Reciprocal(s);
    expect(Math.fround(x / s)).toBe(1.1875);
    expect(roundE4M3(Math.fround(x / s))).toBe(1.25);
    expect(Math.fround(x * r)).toBe(Math.fround(1.1875 - 2 ** -23));
    expect(roundE4M3Scaled(x, r)).toBe(1.125);
    expect(Object.is(roundE4M3Scaled(-0, r), -0)).toBe(true);
  });
});

describe('e2m1', () => {
  const VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

  it('decodes all 16 codes as the bit formula says (and as dtype.ts f4e2m1ToF32)', () => {
    for (let c = 0; c < 16; c++) {
      const want = (c & 8 ? -1 : 1) * VALUES[c & 7];
      expect(same(oracleDecodeE2M1(c), want), `oracle ${c}`).toBe(true);
      expect(same(decodeE2M1(c), want), `code ${c}`).toBe(true);
      expect(same(f4e2m1ToF32(c), want), `f4e2m1ToF32 ${c}`).toBe(true);
    }
    expect(E2M1_MAX).toBe(6);
  });

  it('every code round-trips through encode and round', () => {
    for (let c = 0; c < 16; c++) {
      const v = oracleDecodeE2M1(c);
      expect(encodeE2M1(v), `code ${c}`).toBe(c);
      expect(same(roundE2M1(v), v)).toBe(true);
    }
  });

  it('rounds every midpoint to the even mantissa, and just above / below to the nearer value', () => {
    // midpoint -> expected code (even mantissa): 0.25->0, 0.75->2, 1.25->2, 1.75->4, 2.5->4, 3.5->6, 5->6
    const expected: Array<[number, number]> = [[0.25, 0], [0.75, 2], [1.25, 2], [1.75, 4], [2.5, 4], [3.5, 6], [5, 6]];
    for (let c = 0; c < 7; c++) {
      const mid = (VALUES[c] + VALUES[c + 1]) / 2;
      expect(mid).toBe(expected[c][0]);
      const even = c % 2 === 0 ? c : c + 1;
      expect(even).toBe(expected[c][1]);
      expect(encodeE2M1(mid), `mid ${mid}`).toBe(even);
      expect(encodeE2M1(-mid)).toBe(even | 8);
      expect(roundE2M1(mid)).toBe(VALUES[even]);
      for (const below of [nextDown(mid), f32Down(mid)]) expect(encodeE2M1(below), `${below}`).toBe(c);
      for (const above of [nextUp(mid), f32Up(mid)]) expect(encodeE2M1(above), `${above}`).toBe(c + 1);
    }
  });

  it('matches the oracle on a dense sweep and on random values', () => {
    const xs: number[] = [];
    for (let i = 0; i <= 8000; i++) xs.push(i / 1000);
    const r = rng(2);
    for (let i = 0; i < 50_000; i++) xs.push(2 ** (r() * 8 - 5));
    expect(failures(xs, checkE2M1)).toEqual([]);
  });

  it('saturates to ±6, keeps signed zero, NaN -> +6 (the satfinite choice formats.ts documents)', () => {
    for (const x of [6, nextUp(6), 6.5, 7, 100, 1e30, Infinity]) {
      expect(roundE2M1(x), `${x}`).toBe(6);
      expect(encodeE2M1(x)).toBe(7);
      expect(roundE2M1(-x)).toBe(-6);
      expect(encodeE2M1(-x)).toBe(15);
    }
    expect(encodeE2M1(0)).toBe(0);
    expect(encodeE2M1(-0)).toBe(8);
    expect(same(roundE2M1(-0.1), -0)).toBe(true);
    expect(encodeE2M1(-0.25)).toBe(8);
    expect(roundE2M1(NaN)).toBe(6);
    expect(encodeE2M1(NaN)).toBe(7);
  });
});
