/**
 * runtime/executor/batch.ts: one-sample input sets stacked along axis 0 and a batched run's outputs
 * split back, byte for byte (float32 and bfloat16 bits tensors alike), and the errors for sets that
 * are not one sample of the same shape.
 */
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { splitSamples, stackSamples } from '../../runtime/executor/batch.ts';
import { bitsTensor, isBits } from '../../runtime/executor/bf16.ts';

describe('stackSamples / splitSamples', () => {
  it('stacks two sets along axis 0 and splits the batch back into the same bytes, bits tensors staying bits', () => {
    const a = { h: new Tensor('float32', [1, 2, 2], Float32Array.of(1, 2, 3, 4)), m: new Tensor('int64', [1, 3], BigInt64Array.of(1n, 1n, 0n)), b: bitsTensor([1, 2], Uint16Array.of(0x3f80, 0x7fc1)) };
    const b = { h: new Tensor('float32', [1, 2, 2], Float32Array.of(5, 6, 7, 8)), m: new Tensor('int64', [1, 3], BigInt64Array.of(1n, 0n, 0n)), b: bitsTensor([1, 2], Uint16Array.of(0xbf80, 0x0001)) };
    const s = stackSamples([a, b], new Set(['m']));
    expect(Object.keys(s)).toEqual(['h', 'b']);
    expect([s.h.shape, Array.from(s.h.data as Float32Array)]).toEqual([[2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]]);
    expect(isBits(s.b) && Array.from(s.b.data)).toEqual([0x3f80, 0x7fc1, 0xbf80, 0x0001]); // a NaN payload kept as is
    const [x, y] = splitSamples(stackSamples([a, b]), 2);
    for (const [got, want] of [[x, a], [y, b]] as const) {
      for (const k of Object.keys(want) as (keyof typeof want)[]) {
        expect([got[k].dtype, got[k].shape, Array.from(got[k].data as ArrayLike<unknown>)]).toEqual([want[k].dtype, want[k].shape, Array.from(want[k].data as ArrayLike<unknown>)]);
      }
    }
    expect(isBits(y.b)).toBe(true);
  });

  it('refuses sets that are not one sample of the first set\'s shape and type, naming the input', () => {
    const one = (shape: number[]) => ({ h: new Tensor('float32', shape, new Float32Array(shape.reduce((p, q) => p * q, 1))) });
    expect(() => stackSamples([one([1, 4]), one([1, 3])])).toThrow(/input 'h' of set 1 .*float32\[1,4\].*float32\[1,3\]/);
    expect(() => stackSamples([one([2, 4]), one([2, 4])])).toThrow(/input 'h' of set 0 .*leading 1/);
    expect(() => stackSamples([one([1, 4]), {}])).toThrow(/set 1 .*an input 'h'/);
    expect(() => splitSamples({ y: new Tensor('float32', [3, 2], new Float32Array(6)) }, 2)).toThrow(/output 'y' .*leading dim of 2/);
  });
});
