/**
 * Qwen-Image's latent-side steps (PIPELINE.md §2, §4, §5).
 *   img_shapes: [(1, h, w)] — the transformer's RoPE grid; the exported graphs bake it in, so the
 *     pipeline only checks that the size it runs is the one the graph was exported for.
 *   de-normalise per latent channel, as diffusers writes it in float32:
 *     z = f32(f32(z / f32(1 / f32(std[c]))) + f32(mean[c]))
 *   true CFG lives with the denoising loop (runtime/pipeline/denoise.ts trueCfg).
 */

/** Qwen/Qwen-Image VAE config latents_mean / latents_std (also the class defaults). */
export const LATENTS_MEAN = [-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921];
export const LATENTS_STD = [2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160];

export type ImgShapes = [[number, number, number]];

export function imgShapes(h: number, w: number): ImgShapes {
  return [[1, h, w]];
}

const f = Math.fround;

/** In place on [C, H, W]. */
export function denormalize(z: Float32Array, C: number, plane: number, mean: Float32Array, std: Float32Array): void {
  for (let c = 0; c < C; c++) {
    const inv = f(1 / std[c]);
    for (let p = c * plane; p < (c + 1) * plane; p++) z[p] = f(z[p] / inv) + mean[c];
  }
}

/**
 * The VAE decoder's input from packed latents in one pass: tokens [h*w, 64] -> unpack [64, h, w]
 * -> unpatchify [16, 2h, 2w] -> denormalize (runtime/pipeline/latents.ts and above), the same
 * float32 values as those steps (tested) without their intermediate arrays.
 */
export function unpackForVae(tokens: Float32Array, h: number, w: number, mean: Float32Array, std: Float32Array): Float32Array {
  const K = 64, C = 16, W = 2 * w, plane = 4 * h * w;
  if (tokens.length !== K * h * w) throw new Error(`unpackForVae: expected ${K * h * w} values for ${h}x${w} tokens of ${K}, found ${tokens.length}`);
  const inv = new Float32Array(K), mk = new Float32Array(K), base = new Int32Array(K);
  for (let k = 0; k < K; k++) {
    inv[k] = f(1 / std[k >> 2]);
    mk[k] = mean[k >> 2];
    base[k] = (k >> 2) * plane + ((k >> 1) & 1) * W + (k & 1);
  }
  const out = new Float32Array(C * plane);
  // A token row at a time, channel by channel (flux2/latents.ts unpackForVae says why).
  for (let y = 0; y < h; y++) {
    const row = y * w * K, o = 2 * y * W;
    for (let k = 0; k < K; k++) {
      const d = inv[k], m = mk[k], b = base[k] + o;
      for (let x = 0, t = row + k; x < w; x++, t += K) out[b + 2 * x] = f(tokens[t] / d) + m;
    }
  }
  return out;
}
