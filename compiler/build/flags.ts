/**
 * The nvcc flag list per target. The list is part of every cache key, so changing a flag here
 * rebuilds every kernel.
 *
 * - `-cubin` with one `-gencode arch=compute_X,code=sm_X`: SASS for exactly one GPU, no PTX and
 *   no host code. The `a` suffix (sm_90a, sm_100a) enables the architecture-specific features
 *   (wgmma/TMA multicast/setmaxnreg on Hopper, tcgen05/TMEM on Blackwell) and means the cubin runs
 *   on that GPU only: an sm_90a cubin does not load on a B200 nor an sm_100a one on an H100.
 *   sm_100a needs CUDA 12.8 or newer.
 * - IEEE maths: no `--use_fast_math`. Its pieces are spelled out at their IEEE defaults
 *   (`-ftz=false -prec-div=true -prec-sqrt=true`) so the intent is visible and the key says it;
 *   the kernels are checked against a float32 reference and flush-to-zero or approximate
 *   division would move results for no bandwidth gain. `-fmad=true` (the default) keeps FMA
 *   contraction, which the reference tolerances allow. Templates that want a fast intrinsic
 *   (__expf, rsqrtf) say so in their source.
 * - `-Xptxas -v` prints the resource report (registers, shared memory, spills) we parse;
 *   `-lineinfo` keeps source lines for Nsight without changing the generated code.
 */
import type { BuildTarget } from './types.ts';

export interface TargetArch {
  /** e.g. 'sm_90a' (as ptxas names it). */
  sm: string;
  gencode: string;
  /** Oldest CUDA toolkit (major, minor) whose nvcc knows this architecture. */
  minCuda: [number, number];
}

export const TARGET_ARCH: Record<BuildTarget, TargetArch> = {
  h100: { sm: 'sm_90a', gencode: 'arch=compute_90a,code=sm_90a', minCuda: [12, 0] },
  b200: { sm: 'sm_100a', gencode: 'arch=compute_100a,code=sm_100a', minCuda: [12, 8] },
};

export function nvccFlags(target: BuildTarget): string[] {
  return [
    '-cubin',
    '-O3',
    '-std=c++17',
    '-ftz=false',
    '-prec-div=true',
    '-prec-sqrt=true',
    '-fmad=true',
    '-lineinfo',
    '-Xptxas',
    '-v',
    '-gencode',
    TARGET_ARCH[target].gencode,
  ];
}
