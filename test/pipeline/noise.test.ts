/**
 * The seeded Gaussian noise (runtime/pipeline/noise.ts): same seed -> same bytes, seeds differ,
 * standard-normal statistics, the per-image seed rule, and seed range checks.
 */
import { describe, expect, it } from 'vitest';
import { GaussianNoise, SEED_LIMIT, imageSeed } from '../../runtime/pipeline/noise.ts';

describe('GaussianNoise', () => {
  it('is a pure function of the seed', () => {
    const a = new GaussianNoise(42).fill(10_001), b = new GaussianNoise(42).fill(10_001);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    const c = new GaussianNoise(43).fill(10_001);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });
  it('equals a C build of the same algorithm (splitmix32 -> xoshiro128**, Box-Muller, float32)', () => {
    // Values printed by the reference C code (Vigna's xoshiro128** + splitmix32, libm) for seed 0.
    expect(Array.from(new GaussianNoise(0).fill(4))).toEqual([0.48854631185531616, 0.038372181355953217, 2.5868475437164307, 0.39985963702201843]);
  });
  it('has mean 0, variance 1, symmetric tails', () => {
    const x = new GaussianNoise(7).fill(200_000);
    let s = 0, s2 = 0, beyond3 = 0;
    for (const v of x) { s += v; s2 += v * v; if (Math.abs(v) > 3) beyond3++; }
    const mean = s / x.length, variance = s2 / x.length - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.01);
    expect(beyond3 / x.length).toBeGreaterThan(0.002); // P(|z| > 3) = 0.0027
    expect(beyond3 / x.length).toBeLessThan(0.0035);
  });
  it('image k of a request uses (seed + k) mod 2^32; seeds outside [0, 2^32) are rejected', () => {
    expect(imageSeed(10, 2)).toBe(12);
    expect(imageSeed(SEED_LIMIT, 1)).toBe(0);
    expect(() => new GaussianNoise(-1)).toThrow(RangeError);
    expect(() => new GaussianNoise(SEED_LIMIT + 1)).toThrow(RangeError);
    expect(() => new GaussianNoise(1.5)).toThrow(RangeError);
  });
});
