/**
 * Device allocations (runtime/gpu/cuda.ts alloc) on a stand-in driver: out of memory, the one-line
 * error names the allocation, its size and how much of the GPU is free (another process may hold the
 * rest); any other failure names the CUDA error alone; a success returns the pointer.
 */
import { describe, expect, it } from 'vitest';
import { type Driver, alloc } from '../../runtime/gpu/cuda.ts';

const GiB = 2 ** 30;

function driver(rc: number, free: number, total: number): Driver {
  return {
    rc: (name: string, box: number[]) => {
      expect(name).toBe('cuMemAlloc');
      box[0] = 0x7f0000000000;
      return rc;
    },
    call: (name: string, f: number[], t: number[]) => {
      expect(name).toBe('cuMemGetInfo');
      f[0] = free;
      t[0] = total;
    },
    describe: (code: number) => (code === 2 ? 'CUDA_ERROR_OUT_OF_MEMORY (out of memory)' : `CUDA_ERROR_INVALID_VALUE (invalid argument)`),
  } as unknown as Driver;
}

describe('alloc', () => {
  it('out of memory: names the allocation and its size, and how much of the GPU is free', () => {
    expect(() => alloc(driver(2, 12.5 * GiB, 79.25 * GiB), 32.41 * GiB, 'weights of qwen_image')).toThrow(
      'cuMemAlloc_v2 (weights of qwen_image, 32.41 GiB): expected CUDA_SUCCESS, found CUDA_ERROR_OUT_OF_MEMORY (out of memory): 12.50 GiB of the GPU\'s 79.25 GiB free (nvidia-smi lists the processes holding the rest)',
    );
  });

  it('another failure names the CUDA error alone; a success returns the pointer', () => {
    expect(() => alloc(driver(1, 0, 0), GiB, 'arena')).toThrow(/^cuMemAlloc_v2 \(arena, 1\.00 GiB\): expected CUDA_SUCCESS, found CUDA_ERROR_INVALID_VALUE \(invalid argument\)$/);
    expect(alloc(driver(0, 0, 0), 256, 'scales')).toBe(0x7f0000000000);
  });
});
