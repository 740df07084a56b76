/**
 * Seeded Gaussian noise for the initial latents.
 *
 * Algorithm: xoshiro128** (Blackman & Vigna) seeded from the 32-bit seed through splitmix32, two
 * draws -> one 53-bit uniform in (0, 1], Box–Muller in float64 (both the cosine and the sine
 * output are used, in that order), each value rounded to float32.
 *
 * Guarantee: the same seed gives the same bytes, on any machine, for a given Node/V8 version
 * (V8's Math.log/cos/sin are its own fdlibm ports, not the C library's). It does NOT reproduce
 * torch's generators (Philox on CUDA, MT19937 on CPU): diffusers' images for "seed 42" cannot be
 * regenerated from the seed; to reproduce one bit-for-bit, import its initial noise tensor.
 */

const MAX_SEED = 0xffffffff;

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** A stream of standard normal float32 values from a seed in [0, 2^32). */
export class GaussianNoise {
  private s0: number; private s1: number; private s2: number; private s3: number;
  private spare: number | undefined;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`seed must be an integer in [0, ${MAX_SEED}], got ${seed}`);
    const sm = splitmix32(seed);
    this.s0 = sm(); this.s1 = sm(); this.s2 = sm(); this.s3 = sm();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** xoshiro128**: the next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3 >>> 0, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0;
    return result;
  }

  /** Uniform in (0, 1] with 53 random bits. */
  nextUniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo + 1) / 9007199254740992;
  }

  nextNormal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    const r = Math.sqrt(-2 * Math.log(this.nextUniform()));
    const theta = 2 * Math.PI * this.nextUniform();
    this.spare = Math.fround(r * Math.sin(theta));
    return Math.fround(r * Math.cos(theta));
  }

  /** n standard normal values (float32). */
  fill(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextNormal();
    return out;
  }
}

export const SEED_LIMIT = MAX_SEED;

/** Per-image seed rule: image k of a request with seed s uses (s + k) mod 2^32. */
export function imageSeed(seed: number, k: number): number {
  return (seed + k) % (MAX_SEED + 1);
}

/** A fresh random seed (for requests that give none); not reproducible by design. */
export function randomSeed(): number {
  return Math.floor(Math.random() * (MAX_SEED + 1));
}
