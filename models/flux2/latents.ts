/**
 * Flux.2's latent-side tensors (PIPELINE.md §1.7, §2, §5): position ids and the VAE batch-norm
 * de-normalisation.
 *   img_ids [h*w, 4]: token y*w + x -> (t=0, h=y, w=x, l=0)
 *   txt_ids [L, 4]:   token l       -> (0, 0, 0, l), pads included
 *   BN:  z[c] = f32(f32(z[c] * std[c]) + mean[c]), std = f32(sqrt(f32(var[c] + eps))), on the
 *        patchified 128-channel layout, before unpatchify; mean/var are the VAE's bn buffers.
 */
import { Tensor } from '../../compiler/ir/tensor.ts';

export function imgIds(h: number, w: number): Tensor {
  const d = new BigInt64Array(h * w * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = (y * w + x) * 4;
    d[p + 1] = BigInt(y);
    d[p + 2] = BigInt(x);
  }
  return new Tensor('int64', [1, h * w, 4], d);
}

export function txtIds(length: number): Tensor {
  const d = new BigInt64Array(length * 4);
  for (let l = 0; l < length; l++) d[l * 4 + 3] = BigInt(l);
  return new Tensor('int64', [1, length, 4], d);
}

export interface BatchNormStats { mean: Float32Array; variance: Float32Array; eps: number }

/** In place on [C, h, w] (C = 128 patchified channels). */
export function bnDenormalize(z: Float32Array, C: number, plane: number, bn: BatchNormStats): void {
  const f = Math.fround;
  if (bn.mean.length !== C || bn.variance.length !== C) throw new Error(`VAE batch norm: expected ${C} channels of statistics, found ${bn.mean.length}/${bn.variance.length}`);
  for (let c = 0; c < C; c++) {
    const std = f(Math.sqrt(f(bn.variance[c] + f(bn.eps))));
    const mean = bn.mean[c];
    for (let p = c * plane; p < (c + 1) * plane; p++) z[p] = f(z[p] * std) + mean;
  }
}

/**
 * The VAE decoder's input from packed latents in one pass: tokens [h*w, 128] -> unpack [128, h, w]
 * -> bnDenormalize -> unpatchify [32, 2h, 2w] (runtime/pipeline/latents.ts), the same float32
 * values as those three steps (tested) without their two intermediate arrays.
 */
export function unpackForVae(tokens: Float32Array, h: number, w: number, bn: BatchNormStats): Float32Array {
  const f = Math.fround;
  const K = 128, C = 32, W = 2 * w, plane = 4 * h * w;
  if (tokens.length !== K * h * w) throw new Error(`unpackForVae: expected ${K * h * w} values for ${h}x${w} tokens of ${K}, found ${tokens.length}`);
  if (bn.mean.length !== K || bn.variance.length !== K) throw new Error(`VAE batch norm: expected ${K} channels of statistics, found ${bn.mean.length}/${bn.variance.length}`);
  const std = new Float32Array(K);
  for (let k = 0; k < K; k++) std[k] = f(Math.sqrt(f(bn.variance[k] + f(bn.eps))));
  const mean = bn.mean;
  // Output offset of packed channel k = c*4 + dy*2 + dx at token (0, 0): c*plane + dy*W + dx.
  const base = new Int32Array(K);
  for (let k = 0; k < K; k++) base[k] = (k >> 2) * plane + ((k >> 1) & 1) * W + (k & 1);
  const out = new Float32Array(C * plane);
  // A token row at a time, channel by channel: each channel's values land in one output row, two apart
  // (token by token, the 128 channels' writes went to 128 places at once).
  for (let y = 0; y < h; y++) {
    const row = y * w * K, o = 2 * y * W;
    for (let k = 0; k < K; k++) {
      const s = std[k], m = mean[k], b = base[k] + o;
      for (let x = 0, t = row + k; x < w; x++, t += K) out[b + 2 * x] = f(tokens[t] * s) + m;
    }
  }
  return out;
}
