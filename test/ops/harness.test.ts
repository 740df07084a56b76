/**
 * Self-check of the conformance harness (test/helpers/onnx-model.ts): a wrong value, dtype or shape
 * in our outputs must fail the comparison, so the op suites cannot pass vacuously; and every op in
 * the registry must be named by some conformance case.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { knownOps } from '../../compiler/ops/registry.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { expectAgree, f32, mulberry32, Rng, runBoth } from '../helpers/onnx-model.ts';

const model = {
  inputs: [{ name: 'a', dtype: 'float32' as const, shape: [2, 3] }],
  nodes: [{ op: 'Relu', inputs: ['a'], outputs: ['y'] }],
  outputs: ['y'],
};

describe('harness', () => {
  it('agrees on a correct run, and rejects a perturbed value, dtype or shape', async () => {
    const r = await runBoth(model, { a: new Rng(5).randn([2, 3]) });
    expectAgree(r);
    const y = r.ours.y;
    const bumped = Float32Array.from(y.data as Float32Array);
    bumped[0] += 1e-3 + Math.abs(bumped[0]) * 1e-2;
    expect(() => expectAgree({ ...r, ours: { y: new Tensor('float32', y.shape, bumped) } })).toThrow();
    expect(() => expectAgree({ ...r, ours: { y: Tensor.fromNumbers('float64', y.shape, y.toNumbers()) } })).toThrow();
    expect(() => expectAgree({ ...r, types: { y: { kind: 'tensor', dtype: 'float32', shape: [3, 2] } } })).toThrow();
  });
  it('treats NaN positions as significant', async () => {
    const r = await runBoth({ ...model, nodes: [{ op: 'Identity', inputs: ['a'], outputs: ['y'] }] }, { a: f32([2, 3], [NaN, 1, 2, 3, 4, 5]) });
    expectAgree(r);
    expect(() => expectAgree({ ...r, ours: { y: Tensor.fromNumbers('float32', [2, 3], [0, 1, 2, 3, 4, 5]) } })).toThrow();
  });
  it('mulberry32 is deterministic per seed', () => {
    const a = mulberry32(7), b = mulberry32(7), c = mulberry32(8);
    const xs = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(xs);
    expect(c()).not.toEqual(xs[0]);
  });
});

describe('coverage', () => {
  it('every registered op has a conformance case in test/ops', () => {
    const dir = new URL('.', import.meta.url);
    const text = readdirSync(dir).filter((f) => f.endsWith('.test.ts') && f !== 'harness.test.ts')
      .map((f) => readFileSync(new URL(f, dir), 'utf8')).join('\n');
    expect(knownOps().filter((op) => !new RegExp(`['\`]${op}['\`]`).test(text))).toEqual([]);
  });
});
