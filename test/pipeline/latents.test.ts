/**
 * Latent layouts and the per-family tensors around them: pack/unpack round trips and the exact
 * index rules of PIPELINE.md (Flux.2 §2/§5, Qwen-Image §2/§5), ids, BN and mean/std
 * de-normalisation, true CFG's norm rescale, post-processing to RGB8.
 */
import { describe, expect, it } from 'vitest';
import { bnDenormalize, imgIds, txtIds } from '../../models/flux2/latents.ts';
import { LATENTS_MEAN, LATENTS_STD, denormalize, imgShapes } from '../../models/qwen_image/latents.ts';
import { trueCfg } from '../../runtime/pipeline/denoise.ts';
import { roundHalfEven, toRgb8 } from '../../runtime/pipeline/image.ts';
import { fromTokens, patchify, toTokens, unpatchify } from '../../runtime/pipeline/latents.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';

const f = Math.fround;

describe('pack / unpack', () => {
  const C = 3, H = 6, W = 4, h = 3, w = 2;
  const spatial = new GaussianNoise(1).fill(C * H * W);

  it('patchify: channel c*4 + dy*2 + dx holds pixel (2y+dy, 2x+dx); unpatchify inverts it', () => {
    const p = patchify(spatial, { channels: C, height: H, width: W });
    for (let c = 0; c < C; c++) for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      expect(p[((c * 4 + dy * 2 + dx) * h + y) * w + x]).toBe(spatial[(c * H + 2 * y + dy) * W + 2 * x + dx]);
    }
    expect(unpatchify(p, { channels: C, height: H, width: W })).toEqual(spatial);
  });

  it('toTokens: token y*w + x holds the channels at (y, x); fromTokens inverts it', () => {
    const K = 4 * C;
    const p = patchify(spatial, { channels: C, height: H, width: W });
    const t = toTokens(p, { channels: K, height: h, width: w });
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < K; k++) {
      expect(t[(y * w + x) * K + k]).toBe(p[(k * h + y) * w + x]);
    }
    expect(fromTokens(t, { channels: K, height: h, width: w })).toEqual(p);
  });

  it('Qwen pack (patchify + toTokens) round-trips at the tiny size', () => {
    const z = new GaussianNoise(2).fill(16 * 32 * 32);
    const tokens = toTokens(patchify(z, { channels: 16, height: 32, width: 32 }), { channels: 64, height: 16, width: 16 });
    expect(tokens.length).toBe(256 * 64);
    expect(unpatchify(fromTokens(tokens, { channels: 64, height: 16, width: 16 }), { channels: 16, height: 32, width: 32 })).toEqual(z);
  });

  it('rejects mismatched lengths and odd sizes', () => {
    expect(() => toTokens(new Float32Array(5), { channels: 2, height: 1, width: 2 })).toThrow(/expected 4 values/);
    expect(() => patchify(new Float32Array(9), { channels: 1, height: 3, width: 3 })).toThrow(/multiple of 2/);
  });
});

describe('Flux.2 ids and batch-norm de-normalisation', () => {
  it('img_ids (0, y, x, 0) row-major; txt_ids (0, 0, 0, l)', () => {
    const ids = imgIds(3, 5);
    expect(ids.shape).toEqual([1, 15, 4]);
    expect(ids.toNumbers().slice((1 * 5 + 4) * 4, (1 * 5 + 4) * 4 + 4)).toEqual([0, 1, 4, 0]);
    const t = txtIds(6);
    expect(t.shape).toEqual([1, 6, 4]);
    expect(t.toNumbers().slice(20, 24)).toEqual([0, 0, 0, 5]);
  });
  it('z * sqrt(var + eps) + mean per channel', () => {
    const z = Float32Array.of(1, 2, 3, 4);
    bnDenormalize(z, 2, 2, { mean: Float32Array.of(0.5, -1), variance: Float32Array.of(4, 0.25), eps: 1e-4 });
    const s0 = f(Math.sqrt(f(4 + f(1e-4)))), s1 = f(Math.sqrt(f(0.25 + f(1e-4))));
    expect(Array.from(z)).toEqual([f(f(1 * s0) + 0.5), f(f(2 * s0) + 0.5), f(f(3 * s1) - 1), f(f(4 * s1) - 1)]);
  });
});

describe('Qwen-Image latents', () => {
  it('img_shapes is [(1, h, w)]', () => {
    expect(imgShapes(64, 64)).toEqual([[1, 64, 64]]);
  });
  it('de-normalises z / (1/std) + mean with the VAE config values', () => {
    const z = new Float32Array(16 * 2).fill(1);
    denormalize(z, 16, 2, Float32Array.from(LATENTS_MEAN), Float32Array.from(LATENTS_STD));
    expect(z[0]).toBe(f(f(1 / f(1 / f(2.8184))) + f(-0.7571)));
    expect(z[31]).toBeCloseTo(1.916 - 0.2921, 6);
  });
  it('true CFG: v_u + s (v_c - v_u), rescaled per token to the norm of v_c', () => {
    const vc = Float32Array.of(3, 4, 1, 0), vu = Float32Array.of(1, 1, 0, 1);
    const out = trueCfg(vc, vu, 4, 2);
    const comb0 = [1 + 4 * 2, 1 + 4 * 3];
    const scale0 = 5 / Math.hypot(...comb0);
    expect(out[0]).toBeCloseTo(comb0[0] * scale0, 5);
    expect(out[1]).toBeCloseTo(comb0[1] * scale0, 5);
    expect(Math.hypot(out[2], out[3])).toBeCloseTo(1, 6); // norm of v_c's second token
    expect(Array.from(trueCfg(vc, vu, 1, 2))).toEqual(Array.from(vc)); // s = 1 is the conditional prediction
  });
});

describe('post-processing to RGB8', () => {
  it('clamp(x/2 + 0.5) * 255, round half to even, CHW -> interleaved RGB', () => {
    expect([0.5, 1.5, 2.5, 254.5, 3.2].map(roundHalfEven)).toEqual([0, 2, 2, 254, 3]);
    const chw = Float32Array.of(-1, 1, 0, 2, -3, 0.5);
    expect(Array.from(toRgb8(chw, 1, 2))).toEqual([0, 128, 0, 255, 255, 191]);
  });

  it('equals the per-value rule (float32 steps, clamp, roundHalfEven) on ties, edges and random values', () => {
    const f = Math.fround;
    const rule = (x: number) => roundHalfEven(f(Math.min(1, Math.max(0, f(f(x * 0.5) + 0.5))) * 255));
    const ties: number[] = [];
    for (let k = 0; ties.length < 200 && k < 1 << 22; k++) {
      const x = f(-1 + k * 2 ** -21);
      const y = f(Math.min(1, Math.max(0, f(f(x * 0.5) + 0.5))) * 255);
      if (y % 1 === 0.5) ties.push(x);
    }
    expect(ties.length).toBeGreaterThan(20); // exact .5 products do occur (48 in this range)
    expect(new Set(ties.map((x) => Math.floor(Math.fround(Math.fround(Math.fround(x * 0.5) + 0.5) * 255)) % 2)).size).toBe(2); // below odd and even integers
    const values = [...ties, NaN, Infinity, -Infinity, -1, 1, 0, -0, 1e-30, -1e-30];
    let s = 11;
    while (values.length % 3 !== 0 || values.length < 3000) values.push(((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2.4 - 1.2);
    const chw = Float32Array.from(values);
    const plane = chw.length / 3;
    const got = toRgb8(chw, 1, plane);
    const want = new Uint8Array(chw.length);
    for (let c = 0; c < 3; c++) for (let p = 0; p < plane; p++) want[p * 3 + c] = rule(chw[c * plane + p]);
    expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
  });
});
