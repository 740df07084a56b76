/**
 * Seeded inputs for the GPU host's scripts (test/gpu/denoise-loop.ts, shared-arena.ts): float inputs standard normal from
 * the seed (runtime/pipeline/noise.ts), integer and bool inputs ones (masks keep every token, ids 1), symbolic dims 1.
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import type { ValueInfo } from '../../runtime/executor/types.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';

export function seededInputs(inputs: readonly ValueInfo[], seed: number, skip: ReadonlySet<string> = new Set()): Record<string, Tensor> {
  const noise = new GaussianNoise(seed);
  const set: Record<string, Tensor> = {};
  for (const i of inputs) {
    if (skip.has(i.name)) continue;
    const shape = i.shape.map((d) => (typeof d === 'number' ? d : 1)), n = shape.reduce((a, d) => a * d, 1);
    set[i.name] = i.dtype === 'int64' ? new Tensor('int64', shape, new BigInt64Array(n).fill(1n))
      : i.dtype === 'int32' ? new Tensor('int32', shape, new Int32Array(n).fill(1))
      : i.dtype === 'bool' ? new Tensor('bool', shape, new Uint8Array(n).fill(1))
      : new Tensor('float32', shape, noise.fill(n));
  }
  return set;
}
