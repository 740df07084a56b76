/**
 * compiler/build: the nvcc build driver. buildKernels turns kernel units (CUDA source text) into
 * cubins for one target through a content-hash cache and reports ptxas resources per function.
 */
export { buildKernels, compiledText } from './build.ts';
export { nvccVersion, resolveNvcc } from './nvcc.ts';
export { nvccFlags, TARGET_ARCH } from './flags.ts';
export { parsePtxasReport } from './ptxas.ts';
export type { BuildOptions, BuildReport, BuildTarget, FunctionResources, KernelSource, UnitReport } from './types.ts';
