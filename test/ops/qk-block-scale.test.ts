/**
 * FP8 attention's Q/K block scale (compiler/ops/fused.ts qkBlockScale): the least power of two at or
 * above fp32(amax / 448), so that the pack's codes x · (1 / scale), one multiply a value on the GPU,
 * are the reference's e4m3(x / scale) exactly.
 */
import { describe, expect, it } from 'vitest';
import { qkBlockScale } from '../../compiler/ops/fused.ts';
import { E4M3_MAX, roundE4M3 } from '../../compiler/quant/formats.ts';
import { Rng } from '../helpers/onnx-model.ts';

const isPowerOfTwo = (v: number) => v > 0 && 2 ** Math.round(Math.log2(v)) === v;

describe('qkBlockScale', () => {
  it('is the least power of two at or above fp32(amax / 448), at least 2^-126; 1 where amax is 0, negative or not a number', () => {
    expect([0, -1, NaN].map(qkBlockScale)).toEqual([1, 1, 1]);
    expect(qkBlockScale(448)).toBe(1);
    expect(qkBlockScale(449)).toBe(2);
    expect(qkBlockScale(224)).toBe(0.5);
    expect(qkBlockScale(Math.fround(224.0001))).toBe(1);
    // Below the smallest normal fp32 quotient, and where the quotient underflows to 0: the smallest normal power of two.
    expect(qkBlockScale(448 * 2 ** -140)).toBe(2 ** -126);
    expect(qkBlockScale(2 ** -149)).toBe(2 ** -126);
    expect(qkBlockScale(Infinity)).toBe(Infinity);
    const rng = new Rng(7);
    for (let i = 0; i < 20000; i++) {
      const amax = Math.fround(2 ** (rng.uniform() * 80 - 40) * (1 + rng.uniform()));
      const s = qkBlockScale(amax), q = Math.fround(amax / E4M3_MAX);
      expect(isPowerOfTwo(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(q);
      expect(s / 2).toBeLessThan(q);
    }
  });

  it('makes the kernel\'s x · fp32(1 / scale) the same e4m3 codes as x / scale, and none saturates', () => {
    const rng = new Rng(11);
    for (let i = 0; i < 200000; i++) {
      const amax = Math.fround(2 ** (rng.uniform() * 60 - 30));
      const s = qkBlockScale(amax), inv = Math.fround(1 / s);
      expect(inv * s).toBe(1);
      const x = Math.fround((rng.uniform() * 2 - 1) * amax);
      const viaMultiply = roundE4M3(Math.fround(x * inv)), viaDivision = roundE4M3(x / s);
      expect(Object.is(viaMultiply, viaDivision)).toBe(true);
      expect(Math.abs(x / s)).toBeLessThanOrEqual(E4M3_MAX);
    }
  });
});
