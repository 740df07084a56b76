/**
 * Buffers a PyTorch module computes when it is built, which an export holds as initializers but a
 * checkpoint never stores (they are not in the state dict): computed here from the checkpoint's
 * config.json, in float32 as the modules compute them.
 *
 *   *.rotary_emb.inv_freq [d/2]   transformers' default RoPE (Mistral, Qwen2 / Qwen2.5-VL text
 *                                 models): 1 / theta^(2i/d), theta = the config's rope_theta (at the
 *                                 top, under text_config, or under rope_parameters). A rope_scaling
 *                                 other than none or mrope (mrope splits the same frequencies over
 *                                 axes when they are used) changes the frequencies: refused.
 *   pos_embed.pos_freqs / neg_freqs [4096, sum(axes)/2]   diffusers' QwenEmbedRope (Qwen-Image), as
 *                                 the export holds them: the angles of positions 0..4095 (and
 *                                 -1..-4096, reversed) times 1 / 10000^(2j/D) for each axis of
 *                                 axes_dims_rope (config; (16, 56, 56) by default), wrapped to
 *                                 (-pi, pi] as torch.angle of the module's complex table.
 *
 * powf, sin and cos are the host's here, so a value may differ from PyTorch's in its last bit.
 */
import { fail } from '../errors.ts';
import type { Constant } from '../ir/graph.ts';
import { Tensor } from '../ir/tensor.ts';

type Config = Record<string, unknown> | undefined;
const f = Math.fround;

/** 1 / theta^(2i/d) for i < d/2, in float32. */
function inverseFrequencies(theta: number, dim: number): number[] {
  return Array.from({ length: dim / 2 }, (_, i) => f(1 / f(Math.pow(theta, f((2 * i) / dim)))));
}

function ropeTheta(config: Config): { theta?: number; scaling?: string } {
  const layers = [config, config?.text_config as Config].filter(Boolean) as Record<string, unknown>[];
  for (const c of layers) {
    const params = c.rope_parameters as Record<string, unknown> | undefined;
    const theta = (c.rope_theta ?? params?.rope_theta) as number | undefined;
    if (typeof theta === 'number') {
      const s = (c.rope_scaling ?? params) as Record<string, unknown> | null | undefined;
      const kind = (s?.rope_type ?? s?.type) as string | undefined;
      return { theta, scaling: kind };
    }
  }
  return {};
}

/** The value of initializer `name` when it is a buffer computed from the config; undefined when it is not one. */
export function derivedBuffer(name: string, c: Constant, config: Config, checkpoint: string): Tensor | undefined {
  const where = `initializer '${name}' (not in checkpoint ${checkpoint}; computed from its config.json)`;
  if (name.endsWith('rotary_emb.inv_freq')) {
    if (c.dtype !== 'float32' || c.shape.length !== 1) fail(where, 'a float32 vector of RoPE frequencies', `${c.dtype}[${c.shape}]`);
    const { theta, scaling } = ropeTheta(config);
    if (theta === undefined) fail(where, 'a config.json with rope_theta beside the checkpoint', config ? 'no rope_theta in it' : 'no config.json');
    if (scaling && scaling !== 'default' && scaling !== 'mrope') fail(where, "RoPE without frequency scaling ('default' or 'mrope')", `rope_scaling '${scaling}'`);
    return Tensor.fromNumbers('float32', c.shape, inverseFrequencies(theta!, c.shape[0] * 2));
  }
  const qwen = /pos_embed\.(pos|neg)_freqs$/.exec(name);
  if (qwen) {
    const axes = (config?.axes_dims_rope as number[] | undefined) ?? [16, 56, 56];
    const cols = axes.reduce((a, d) => a + d / 2, 0);
    if (c.dtype !== 'float32' || c.shape.length !== 2 || c.shape[1] !== cols) fail(where, `float32 [positions, ${cols}] rotation angles (axes_dims_rope ${JSON.stringify(axes)})`, `${c.dtype}[${c.shape}]`);
    const rows = c.shape[0], out = new Float32Array(rows * cols);
    const omegas = axes.flatMap((d) => inverseFrequencies(10000, d));
    for (let p = 0; p < rows; p++) {
      const index = qwen[1] === 'pos' ? p : -(rows - p); // neg: arange(n).flip(0) * -1 - 1
      for (let j = 0; j < cols; j++) {
        const x = f(index * omegas[j]);
        out[p * cols + j] = f(Math.atan2(f(Math.sin(x)), f(Math.cos(x))));
      }
    }
    return new Tensor('float32', c.shape, out);
  }
  return undefined;
}
