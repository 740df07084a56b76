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
 *   the products swamps their low bits, and every step truncates (a bias toward zero). Over K = 6144
 *   this moves an output ~2e-3-5e-3 (relative L2) from the exact sum on random operands.
 *   Promotion (the own kernel's `promote`, policy accumulation "fp32"): the tensor cores' sum
 *   restarts from 0 every `promote` codes of K and is added into an fp32 total (round to nearest).
 *
 * Inputs are e4m3 values (decoded: the q tensors of dc.Quantize); outputs are fp32 values.
 */

/** Exponent given to a zero term: below any product's, so it never sets the alignment and aligns to 0. */
const ZERO_EXPONENT = -1000;

/** The e4m3 values of `values` as signed integer significands m (value = m · 2^(e-3)) and exponents e. */
export interface E4M3Parts { mant: Int32Array; exp: Int32Array }

export function e4m3Parts(values: ArrayLike<number>): E4M3Parts {
  const n = values.length;
  const mant = new Int32Array(n), exp = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i], a = Math.abs(v);
    if (a === 0) { exp[i] = ZERO_EXPONENT; continue; }
    // e4m3: normals 2^-6 .. 448 (significand 8..15 eighths), subnormals below (exponent -6, 1..7 eighths).
    const e = a >= 2 ** -6 ? Math.floor(Math.log2(a)) : -6;
    const m = a / 2 ** (e - 3);
    if (!Number.isInteger(m) || m > 15 || (e > -6 && m < 8) || e > 8) throw new Error(`tensor-core model: ${v} is not an e4m3 value`);
    mant[i] = v < 0 ? -m : m;
    exp[i] = e;
  }
  return { mant, exp };
}

const POW2 = new Float64Array(2400);
for (let i = 0; i < POW2.length; i++) POW2[i] = 2 ** (i - 1200);
const pow2 = (e: number) => (e < -1200 ? 0 : POW2[e + 1200]);

/** One k32 step: c (an fp32 value) plus the products of a[ao + i]·b[bo + i], i < n (n <= 32). */
function fusedStep(c: number, a: E4M3Parts, ao: number, b: E4M3Parts, bo: number, n: number): number {
  let ce = ZERO_EXPONENT, cm = 0;
  if (c !== 0) {
    // c = cm · 2^(ce - 23), |cm| a 24-bit integer (every accumulator value is a normal fp32 here).
    ce = Math.floor(Math.log2(Math.abs(c)));
    if (pow2(ce) > Math.abs(c)) ce--;
    else if (pow2(ce + 1) <= Math.abs(c)) ce++;
    cm = c / pow2(ce - 23);
  }
  let top = ce;
  for (let i = 0; i < n; i++) {
    const e = a.exp[ao + i] + b.exp[bo + i];
    if (e > top) top = e;
  }
  if (top <= ZERO_EXPONENT) return 0;
  // Units of 2^(top - 13). A product P = ma·mb (|P| <= 225) is (P/64)·2^e: P · 2^(7 + e - top) units;
  // c is cm · 2^(ce - 23): cm · 2^(ce - top - 10) units. Truncation toward zero on the magnitude.
  let sum = 0;
  if (cm !== 0) sum += truncShift(cm, ce - top - 10);
  for (let i = 0; i < n; i++) {
    const p = a.mant[ao + i] * b.mant[bo + i];
    if (p !== 0) sum += truncShift(p, 7 + a.exp[ao + i] + b.exp[bo + i] - top);
  }
  if (sum === 0) return 0;
  // Normalise: keep the top 14 significant bits (13 fractional), truncating toward zero.
  const mag = Math.abs(sum);
  const bits = Math.floor(Math.log2(mag)) + 1;
  const kept = bits > 14 ? Math.floor(mag / pow2(bits - 14)) * pow2(bits - 14) : mag;
  return (sum < 0 ? -kept : kept) * pow2(top - 13);
}

/** trunc(v · 2^s) for an integer v (toward zero). */
function truncShift(v: number, s: number): number {
  if (s >= 0) return v * pow2(s);
  const t = Math.floor(Math.abs(v) * pow2(s));
  return v < 0 ? -t : t;
}

/**
 * The fp32 accumulator of one output: Σ_k a[ao + k]·b[bo + k] over k < K, in k32 steps as the tensor
 * cores take them; `promote` > 0: restarted every `promote` codes of K (a multiple of 32) and added
 * into an fp32 total.
 */
export function sm90Dot(a: E4M3Parts, ao: number, b: E4M3Parts, bo: number, K: number, promote = 0): number {
  if (promote % 32) throw new Error(`tensor-core model: promotion every ${promote} codes is not a whole number of k32 steps`);
  let total = 0, acc = 0;
  for (let k = 0; k < K; k += 32) {
    acc = fusedStep(acc, a, ao + k, b, bo + k, Math.min(32, K - k));
    if (promote && ((k + 32) % promote === 0 || k + 32 >= K)) {
      total = Math.fround(total + acc);
      acc = 0;
    }
  }
  return promote ? total : acc;
}
