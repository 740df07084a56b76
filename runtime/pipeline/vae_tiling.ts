/**
 * Decodes a latent with a VAE graph whose spatial size is static. When the latent has exactly the
 * graph's size this is one plain call (the full-size models: a 128x128 latent for a 128x128 graph).
 *
 * When the latent is larger (only the bundled tiny models: their transformer's 16x16 token grid
 * unpacks to 32x32 latents, their VAE decoder was exported for 16x16), it decodes overlapping
 * tiles of the graph's size and blends them, the way diffusers' `enable_tiling()` tiled_decode
 * does: tile origins step by (tile - overlap) and the last one is aligned to the far edge; in the
 * output, each tile's contribution is weighted by a ramp that rises linearly across the overlap
 * (pixel centres, so weights never reach 0 inside the image), and the sum is normalised by the
 * summed weights. The decoder's receptive field and mid-block attention see one tile at a time,
 * so the result is close to, not equal to, a whole-latent decode.
 */

export interface TileSpec {
  /** Latent size the graph takes (H, W). */
  tileH: number;
  tileW: number;
  /** Overlap between neighbouring tiles, in latent pixels (< tile). */
  overlap: number;
  /** Output pixels per latent pixel (the VAE's scale factor). */
  scale: number;
}

/** Tile origins along one axis covering [0, size). */
export function tileOrigins(size: number, tile: number, overlap: number): number[] {
  if (size <= tile) return [0];
  const stride = Math.max(1, tile - overlap);
  const out: number[] = [];
  for (let o = 0; o + tile < size; o += stride) out.push(o);
  out.push(size - tile);
  return out;
}

/** Weight of output pixel p (0-based) inside a tile of length L whose blending ramps are r long. */
function ramp(p: number, L: number, r: number, atStart: boolean, atEnd: boolean): number {
  let w = 1;
  if (!atStart && r > 0) w = Math.min(w, (p + 0.5) / r);
  if (!atEnd && r > 0) w = Math.min(w, (L - p - 0.5) / r);
  return w;
}

/**
 * latent [C, H, W] -> image [3, H*scale, W*scale]. `decode` runs the graph on one [C, tileH, tileW]
 * tile and returns [3, tileH*scale, tileW*scale].
 */
export async function decodeTiled(
  latent: Float32Array, C: number, H: number, W: number, spec: TileSpec,
  decode: (tile: Float32Array) => Promise<Float32Array>,
): Promise<Float32Array> {
  const { tileH, tileW, scale } = spec;
  if (H === tileH && W === tileW) return decode(latent);
  if (H < tileH || W < tileW) throw new Error(`VAE decode: latent ${H}x${W} is smaller than the graph's ${tileH}x${tileW}`);
  const OH = H * scale, OW = W * scale, plane = OH * OW;
  const acc = new Float64Array(3 * plane), wsum = new Float64Array(plane);
  const ys = tileOrigins(H, tileH, spec.overlap), xs = tileOrigins(W, tileW, spec.overlap);
  const rampLen = spec.overlap * scale;
  const tile = new Float32Array(C * tileH * tileW);
  for (const [iy, y0] of ys.entries()) {
    for (const [ix, x0] of xs.entries()) {
      for (let c = 0; c < C; c++) for (let y = 0; y < tileH; y++) {
        const src = (c * H + y0 + y) * W + x0;
        tile.set(latent.subarray(src, src + tileW), (c * tileH + y) * tileW);
      }
      const out = await decode(tile);
      const th = tileH * scale, tw = tileW * scale;
      if (out.length !== 3 * th * tw) throw new Error(`VAE decode: tile output has ${out.length} values, expected 3x${th}x${tw}`);
      for (let y = 0; y < th; y++) {
        const wy = ramp(y, th, rampLen, iy === 0, iy === ys.length - 1);
        for (let x = 0; x < tw; x++) {
          const w = wy * ramp(x, tw, rampLen, ix === 0, ix === xs.length - 1);
          const p = (y0 * scale + y) * OW + x0 * scale + x;
          wsum[p] += w;
          for (let c = 0; c < 3; c++) acc[c * plane + p] += w * out[(c * th + y) * tw + x];
        }
      }
    }
  }
  const img = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) for (let p = 0; p < plane; p++) img[c * plane + p] = acc[c * plane + p] / wsum[p];
  return img;
}
