/**
 * The VAE decoders' share of the GPU cases (test/gpu/cases.ts): which graphs, and expected values
 * for outputs too large to bring back whole.
 *
 * Full-size outputs (1024x1024 decoders) are sampled: the harness saves every `stride`-th element
 * (an odd stride, so samples walk across channels, rows and columns) and the check compares those.
 * Convolution samples come from an independent direct sum over the generated inputs (values drawn
 * lazily, element by element, from the same generator as the GPU's); norm samples from the
 * reference executor on the whole tensor, for tensors up to NORM_LIMIT elements (larger ones are
 * timed only).
 */
import type { DType } from '../../compiler/ir/dtype.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import { fullModelPath } from '../../compiler/full-models.ts';

export const VAE_TINY = ['flux2_vae_decoder', 'qwen_image_vae_decoder'];
export const NORM_LIMIT = 1 << 23;
const SAMPLES = 4096;

/** The full-size VAE decoder exports (bundled, structure only; 1024x1024 latents). */
export const vaeFull = (): string[] => ['flux2_vae_decoder', 'qwen_image_vae_decoder'].map(fullModelPath);

/** An odd stride giving at most SAMPLES samples of n elements. */
export function sampleStride(n: number): number {
  const s = Math.max(1, Math.ceil(n / SAMPLES));
  return s === 1 ? 1 : s | 1;
}

export const sampleCount = (n: number, stride: number) => Math.floor((n - 1) / stride) + 1;

/**
 * y[n, co, oy, ox] = b[co] + sum over (ky, kx, ci) of w[co, ky, kx, ci] * x[n, ci, (oy-pt+ky)/up, (ox-pl+kx)/up]
 * at every stride-th output element, in float64. `value(arg, i)` is element i of kernel argument
 * `arg` (0 = x, 1 = w, 2 = bias) as generated on the GPU.
 */
export function convSamples(graph: Graph, node: Node, stride: number, value: (arg: number, i: number) => number): number[] {
  const shape = (v: string) => (graph.types.get(v) as unknown as { dtype: DType; shape: number[] }).shape;
  const [, ci, hs, ws] = shape(node.inputs[0]);
  const [, kh, kw] = shape(node.inputs[1]);
  const [nb, co, ho, wo] = shape(node.outputs[0]);
  const conv = node.body!.nodes.find((b) => b.op === 'Conv')!;
  const [pt, pl] = conv.attrs.pads as number[];
  const up = (node.attrs.upsample as number | undefined) ?? 1;
  const out: number[] = [];
  const total = nb * co * ho * wo;
  for (let o = 0; o < total; o += stride) {
    const ox = o % wo, oy = Math.floor(o / wo) % ho, c = Math.floor(o / (wo * ho)) % co, n = Math.floor(o / (wo * ho * co));
    let acc = node.inputs[2] ? value(2, c) : 0;
    for (let ky = 0; ky < kh; ky++) {
      const iy = oy - pt + ky;
      if (iy < 0 || iy >= hs * up) continue;
      for (let kx = 0; kx < kw; kx++) {
        const ix = ox - pl + kx;
        if (ix < 0 || ix >= ws * up) continue;
        const xBase = ((n * ci) * hs + Math.floor(iy / up)) * ws + Math.floor(ix / up), wBase = ((c * kh + ky) * kw + kx) * ci;
        for (let i = 0; i < ci; i++) acc += value(1, wBase + i) * value(0, xBase + i * hs * ws);
      }
    }
    out.push(acc);
  }
  return out;
}
