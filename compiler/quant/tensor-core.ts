/**
 * What Hopper's FP8 tensor cores (sm_90a `wgmma ... .f32.e4m3.e4m3`) compute, bit for bit: the
 * simulation of an FP8 GEMM with fast accumulation (the own kernel, compiler/codegen/gemm.ts, and
 * cuBLASLt's CUBLASLT_MATMUL_DESC_FAST_ACCUM), instead of the exact sums of dc.QLinear's default.
 *
 * The arithmetic, as MMA-Sim (Xie et al., "Bit-Accurate Reference Model of Tensor Cores and Matrix
 * Cores", arXiv 2511.10909, Microsoft Research) derived it for Hopper and validated it bitwise on
 * the hardware; written here from that description:
 *
 *   one wgmma k32 step, per output element: d = c + Σ_{i<32} a_i·b_i as ONE fused sum of 33 terms.
 *     Every product is exact: significand (m_a/8)·(m_b/8) in [0, 4), exponent e_a + e_b (e4m3
 *     subnormals: exponent -6, significand below 1; a zero term takes no part in the maximum).
 *     c is the fp32 accumulator: significand in [1, 2), its exponent.
 *     Each term is aligned to the largest exponent E of the 33 and truncated toward zero to 13
 *     fractional bits there (units of 2^(E-13)); the aligned terms are summed exactly.
 *     The sum is normalised to fp32 with its significand truncated toward zero to 13 fractional
 *     bits (an "e8m13" value): the accumulator never holds more than 14 significant bits.
 *   K is walked in k32 steps in order, the accumulator starting at 0: so a value of |c| much above
 *   the products swamps their low bits, and every step truncates (a bias toward zero). On the GEMM
 *   harness's random operands this moves an output from the exact sum by 1.4e-3 (K = 3072) to
 *   4.6e-3 (K = 24576), relative L2 (bench/results/gemm-sm90-model-2026-11-26s11.md, fp32 outputs).
 *   Promotion (the own kernel's `promote`, what policy accumulation "fp32" runs, though its compiles
 *   are simulated with exact sums): the tensor cores' sum restarts from 0 every `promote` codes of K
 *   and is added into an fp32 total (round to nearest).
 *
 * Checked on an H100 there, bit for bit: 19 GEMM shapes with operands of exponents 2^-3 .. 2^2, and
 * 4 shapes with 'edge' operands (an eighth zeros of either sign, a quarter subnormals, the rest normals
 * of every exponent; bench/RESULTS.md "Session 11: the FP8 GEMMs match"). NaN codes follow the
 * description above and are not measured.
 *
 * Inputs are e4m3 values (decoded: the q tensors of dc.Quantize, where a NaN or infinite activation
 * becomes NaN); outputs are fp32 values, NaN where any product has a NaN factor (even times 0).
 */
import { fail } from '../errors.ts';

/** Exponent given to a zero term: far below any product's (-12 .. 16), so a product with a zero
 * factor never sets the alignment and truncates to nothing. */
const ZERO_EXPONENT = -1000;
/** Below this, a step's largest exponent is a zero term's: every term is zero. */
const ALL_ZERO = -500;
/** Exponent given to a NaN code: any product with it (even times zero) is above NAN_TERM, and NaN. */
const NAN_EXPONENT = 1 << 20, NAN_TERM = 1 << 19;

/** The e4m3 values of `values` as signed integer significands m (value = m · 2^(e-3)) and exponents e. */
export interface E4M3Parts { mant: Int32Array; exp: Int32Array }

const F64 = new Float64Array(1), U32 = new Uint32Array(F64.buffer);
/** 2^(7 - d): a product's units d below a step's largest exponent (d >= 16: nothing is left of |P| <= 225). */
const SCALE = Float64Array.from({ length: 16 }, (_, d) => 2 ** (7 - d));

/** `where` names the values in the error for one that is not e4m3. */
export function e4m3Parts(values: ArrayLike<number>, where = 'tensor-core model'): E4M3Parts {
  const n = values.length;
  const mant = new Int32Array(n), exp = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i], a = Math.abs(v);
    if (a === 0) { exp[i] = ZERO_EXPONENT; continue; }
    if (Number.isNaN(v)) { exp[i] = NAN_EXPONENT; continue; }
    // e4m3fn: normals 2^-6 .. 448 (significand 8..15 eighths, 14 at most at exponent 8: 15 is the
    // NaN code), subnormals below (exponent -6, 1..7 eighths). The exponent of a normal value from
    // its float64 bits (exact, unlike log2).
    F64[0] = a;
    const e = a >= 2 ** -6 ? ((U32[1] >>> 20) & 0x7ff) - 1023 : -6;
    const m = a / 2 ** (e - 3);
    if (!Number.isInteger(m) || m > 15 || (e > -6 && m < 8) || e > 8 || (e === 8 && m > 14)) fail(where, 'e4m3 values (at most 448, 3 significand bits)', `${v} at ${i}`);
    mant[i] = v < 0 ? -m : m;
    exp[i] = e;
  }
  return { mant, exp };
}

/**
 * The fp32 accumulator of one output: Σ_k a[ao + k]·b[bo + k] over k < K, in k32 steps as the tensor
 * cores take them; `promote` > 0: restarted every `promote` codes of K (a multiple of 32) and added
 * into an fp32 total. `where` names the caller in the error for a promotion off the k32 steps.
 *
 * Integer arithmetic throughout (every value below is exact in a double): the accumulator is
 * cm · 2^ce (|cm| < 2^14); a step's terms are integers in units of 2^(top - 13), top the step's
 * largest exponent: a product P = m_a·m_b (|P| <= 225) of value P · 2^(e_a + e_b - 6) is
 * trunc(P · 2^(e_a + e_b - top + 7)) units, the accumulator trunc(cm · 2^(ce - top + 13)) (Math.trunc:
 * toward zero). |sum| < 2^21.
 */
export function sm90Dot(a: E4M3Parts, ao: number, b: E4M3Parts, bo: number, K: number, promote = 0, where = 'tensor-core model'): number {
  if (!(promote >= 0 && promote % 32 === 0)) fail(where, 'promotion every whole number of k32 steps (a multiple of 32 codes; 0: never)', `${promote}`);
  const am = a.mant, ae = a.exp, bm = b.mant, be = b.exp;
  let total = 0, cm = 0, ce = 0;
  for (let k = 0; k < K; k += 32) {
    const n = Math.min(32, K - k), pa = ao + k, pb = bo + k;
    // The largest exponent: the accumulator's (its leading bit), the products' e_a + e_b.
    let top = cm !== 0 ? ce + 31 - Math.clz32(Math.abs(cm)) : ZERO_EXPONENT;
    for (let i = 0; i < n; i++) {
      const e = ae[pa + i] + be[pb + i];
      if (e > top) top = e;
    }
    if (top > NAN_TERM) return NaN;
    if (top > ALL_ZERO) {
      let sum = Math.trunc(cm * 2 ** (ce - top + 13));
      for (let i = 0; i < n; i++) {
        const d = top - ae[pa + i] - be[pb + i];
        if (d < 16) sum += Math.trunc(am[pa + i] * bm[pb + i] * SCALE[d]);
      }
      // Normalise: keep the top 14 significant bits (13 fractional), truncating toward zero.
      const mag = Math.abs(sum), drop = Math.max(0, 18 - Math.clz32(mag));
      cm = sum < 0 ? -(mag >>> drop) : mag >>> drop;
      ce = top - 13 + drop;
    }
    if (promote && ((k + 32) % promote === 0 || k + 32 >= K)) {
      total = Math.fround(total + cm * 2 ** ce);
      cm = 0;
    }
  }
  return promote ? total : cm * 2 ** ce;
}
