/**
 * Tiled VAE decoding (runtime/pipeline/vae_tiling.ts), the tiny-model adaptation: tile placement,
 * a single plain call when sizes match (the full-size models), and exact reconstruction when the
 * "decoder" is tile-local (every output pixel depends only on its own latent pixel), which shows
 * the blending weights are normalised and cover every pixel.
 */
import { describe, expect, it } from 'vitest';
import { decodeTiled, tileOrigins } from '../../runtime/pipeline/vae_tiling.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';

/** Pointwise decoder: output channel o at (y, x) = sum_c (o+1)*(c+1)*z[c, y/s, x/s]. */
function pointwise(C: number, H: number, W: number, s: number) {
  return async (z: Float32Array) => {
    const out = new Float32Array(3 * H * s * W * s);
    for (let o = 0; o < 3; o++) for (let y = 0; y < H * s; y++) for (let x = 0; x < W * s; x++) {
      let v = 0;
      for (let c = 0; c < C; c++) v += (o + 1) * (c + 1) * z[(c * H + Math.floor(y / s)) * W + Math.floor(x / s)];
      out[(o * H * s + y) * W * s + x] = v;
    }
    return out;
  };
}

describe('tiled VAE decode', () => {
  it('places tiles with the given overlap, the last one flush with the edge', () => {
    expect(tileOrigins(32, 16, 8)).toEqual([0, 8, 16]);
    expect(tileOrigins(16, 16, 8)).toEqual([0]);
    expect(tileOrigins(40, 16, 4)).toEqual([0, 12, 24]);
    expect(tileOrigins(33, 16, 0)).toEqual([0, 16, 17]);
  });

  it('is one plain call when the latent has the graph size', async () => {
    const z = new GaussianNoise(3).fill(2 * 8 * 8);
    let calls = 0;
    const dec = pointwise(2, 8, 8, 2);
    const out = await decodeTiled(z, 2, 8, 8, { tileH: 8, tileW: 8, overlap: 4, scale: 2 }, (t) => { calls++; return dec(t); });
    expect(calls).toBe(1);
    expect(out).toEqual(await dec(z));
  });

  it('reassembles a tile-local decoder exactly (9 tiles of 16 over 32, overlap 8)', async () => {
    const C = 2, H = 32, W = 32, s = 2;
    const z = new GaussianNoise(4).fill(C * H * W);
    let calls = 0;
    const tileDec = pointwise(C, 16, 16, s);
    const out = await decodeTiled(z, C, H, W, { tileH: 16, tileW: 16, overlap: 8, scale: s }, (t) => { calls++; return tileDec(t); });
    expect(calls).toBe(9);
    const whole = await pointwise(C, H, W, s)(z);
    for (let i = 0; i < whole.length; i++) expect(out[i]).toBeCloseTo(whole[i], 5);
  });

  it('rejects a latent smaller than the graph', async () => {
    await expect(decodeTiled(new Float32Array(4), 1, 2, 2, { tileH: 4, tileW: 4, overlap: 0, scale: 1 }, async (t) => t)).rejects.toThrow(/smaller than the graph/);
  });
});
