/**
 * The low-precision number formats the kernels use, as exact scalar codecs (double arithmetic;
 * every value here is a short binary fraction, so nothing is lost):
 *
 *   FP8 e4m3fn  bias 7, 3 mantissa bits, max 448, subnormals down to 2⁻⁹, code 0x7f/0xff = NaN,
 *               no infinity. Encoding rounds to nearest, ties to even, and saturates to ±448
 *               (what PTX cvt.rn.satfinite.e4m3x2.f32 does; scaled quantization never relies on
 *               overflow).
 *   FP4 e2m1    bias 1, 1 mantissa bit: ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}; round to nearest even,
 *               saturating at ±6 (NVFP4 element format).
 */

export const E4M3_MAX = 448;
export const E2M1_MAX = 6;

/**
 * The 8-bit scale of an amax for codes up to codeMax: fp32(amax / codeMax), or 1 where that is not positive (amax 0,
 * negative or NaN, or so small that the quotient underflows to 0: the codes are then those of x · 1, all 0 for such
 * values, never the NaN or saturated codes an infinite reciprocal would give). The kernels' dc_amax_scale
 * (templates/preamble.cuh).
 */
export function amaxScale(amax: number, codeMax: number): number {
  const s = Math.fround(amax / codeMax);
  return s > 0 ? s : 1;
}

/** The FP8 scale of an amax, amaxScale(amax, 448): every FP8 per-row, per-channel and per-token scale (the Quantize op,
 * the bulk quantizer, V's channel scales, the kernels' dc_fp8_scale). */
export const fp8Scale = (amax: number) => amaxScale(amax, E4M3_MAX);

/**
 * The reciprocal every 8-bit quantization multiplies by (e4m3 and int8 codes of x with scale s are those
 * of fp32(x · r)): r = 1 / s rounded to fp32's 24-bit significand, its exponent unbounded (a double; past
 * fp32's range only for s below about 2^-128; rounded through a scaled form from r = 2^126 on, where fround
 * could round up to infinity). The kernels (templates/preamble.cuh dc_qprep) form it as the fp32 1 / s, or
 * for s below 2^-126 as 1 / (s · 2^100) with x · 2^100: the same product, exactly. One multiply a
 * value instead of an exact division's five instructions (bench/RESULTS.md "Session 25"); against the
 * quotient fp32(x / s) the product differs by an ulp or so, so a code moves only where x / s lies that
 * close to an e4m3 rounding boundary. (The double 1 / s is rounded twice, 53 then 24 bits: for a quotient
 * of 24-bit numbers that is the correctly rounded result, 53 >= 2 · 24.)
 */
export function fp8Reciprocal(s: number): number {
  const r = 1 / s;
  return r < 2 ** 126 ? Math.fround(r) : Math.fround(r * 2 ** -100) * 2 ** 100;
}

/** The e4m3 value x quantizes to with the reciprocal r of its scale (fp8Reciprocal): e4m3(fp32(x · r)). */
export const roundE4M3Scaled = (x: number, r: number): number => roundE4M3(Math.fround(x * r));

/** Round half to even. */
export function rne(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The e4m3fn value nearest to x (ties to even), saturated to ±448; NaN stays NaN. */
export function roundE4M3(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let q: number;
  if (a >= E4M3_MAX) q = E4M3_MAX;
  else if (a < 2 ** -6) q = rne(a / 2 ** -9) * 2 ** -9;
  else {
    const step = 2 ** (Math.floor(Math.log2(a)) - 3);
    q = Math.min(rne(a / step) * step, E4M3_MAX);
  }
  return x < 0 || Object.is(x, -0) ? -q : q;
}

export function decodeE4M3(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >> 3) & 0xf, m = code & 7;
  if (e === 0xf && m === 7) return NaN;
  return sign * (e === 0 ? (m / 8) * 2 ** -6 : (1 + m / 8) * 2 ** (e - 7));
}

/** The e4m3fn code of x (rounded and saturated as roundE4M3). */
export function encodeE4M3(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const q = roundE4M3(x);
  const sign = q < 0 || Object.is(q, -0) ? 0x80 : 0;
  const a = Math.abs(q);
  if (a === 0) return sign;
  if (a < 2 ** -6) return sign | (a / 2 ** -9);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 7) << 3) | ((a / 2 ** e - 1) * 8);
}

const E2M1_VALUES = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

/** The e2m1 value nearest to x (ties to even mantissa), saturated to ±6; NaN maps to +6 per satfinite. */
export function roundE2M1(x: number): number {
  if (Number.isNaN(x)) return E2M1_MAX;
  const a = Math.abs(x);
  let q: number;
  if (a >= E2M1_MAX) q = E2M1_MAX;
  else if (a < 2) q = rne(a / 0.5) * 0.5;
  else if (a < 4) q = rne(a) ;
  else q = rne(a / 2) * 2;
  return x < 0 || Object.is(x, -0) ? -q : q;
}

export function decodeE2M1(code: number): number {
  return (code & 8 ? -1 : 1) * E2M1_VALUES[code & 7];
}

export function encodeE2M1(x: number): number {
  const q = roundE2M1(x);
  return (q < 0 || Object.is(q, -0) ? 8 : 0) | E2M1_VALUES.indexOf(Math.abs(q));
}
