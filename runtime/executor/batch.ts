/**
 * One batched run for several samples: a module compiled at batch N (`npx compile --batch N`,
 * compiler/ir/rebatch.ts) takes N one-sample input sets stacked along axis 0 and gives each
 * sample's outputs as the slices [k] of its outputs. Tensors keep their storage type (a bits
 * tensor stays bits, executor/bf16.ts), so stacking and splitting copy bytes and never round.
 */
import { fail } from '../../compiler/errors.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';

type Data = Tensor['data'];
const like = (x: Data, n: number): Data => new (x.constructor as new (n: number) => Data)(n);

/** Input sets of one sample each ([1, ...] every input), stacked into one set of the batch; `except`: inputs left out. */
export function stackSamples(sets: readonly Record<string, Tensor>[], except: ReadonlySet<string> = new Set()): Record<string, Tensor> {
  if (!sets.length) fail('a batched run', 'at least one input set', 'none');
  const out: Record<string, Tensor> = {};
  for (const name of Object.keys(sets[0])) {
    if (except.has(name)) continue;
    const first = sets[0][name];
    const data = like(first.data, first.size * sets.length);
    sets.forEach((set, k) => {
      const p = set[name];
      if (!p) fail(`input set ${k} of a batched run`, `an input '${name}' (as set 0 has)`, 'none');
      if (p.dtype !== first.dtype || p.shape[0] !== 1 || p.shape.join() !== first.shape.join() || p.data.constructor !== first.data.constructor) {
        fail(`input '${name}' of set ${k} in a batched run`, `one sample as in set 0: ${first.dtype}[${first.shape}] with a leading 1`, `${p.dtype}[${p.shape}]`);
      }
      (data as Float32Array).set(p.data as Float32Array, k * first.size);
    });
    out[name] = new Tensor(first.dtype, [sets.length, ...first.shape.slice(1)], data);
  }
  return out;
}

/** A batched run's outputs split into one set per sample (each output's slice [k], leading dim 1). */
export function splitSamples(outputs: Record<string, Tensor>, samples: number): Record<string, Tensor>[] {
  return Array.from({ length: samples }, (_, k) => Object.fromEntries(Object.entries(outputs).map(([name, t]) => {
    if (t.shape[0] !== samples) fail(`output '${name}' of a batched run`, `a leading dim of ${samples} (the samples)`, `[${t.shape}]`);
    const n = t.size / samples;
    return [name, new Tensor(t.dtype, [1, ...t.shape.slice(1)], t.data.slice(k * n, (k + 1) * n) as Data)];
  })));
}
