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
