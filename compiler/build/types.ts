/**
 * Types of the nvcc build driver: what goes in (one self-contained CUDA translation unit per
 * kernel) and what comes out (a cubin per unit and the ptxas resource report per function).
 *
 * A unit's `name` is file-safe and unique within one build; it becomes the unit's file name
 * (`/kernels/<name>.cu` in line info and compiler messages) and so is part of the cache key.
 */
export type BuildTarget = 'h100' | 'b200';

export interface KernelSource {
  /** File-safe id of the unit: [A-Za-z0-9_.-]+, unique in one build. */
  name: string;
  /** The full CUDA C++ translation unit; it may include only toolkit headers (<cuda_fp8.h>, ...). */
  source: string;
  /** A hot kernel must not spill registers (a spill fails the build) unless acceptSpills is set. */
  hot: boolean;
  acceptSpills?: boolean;
}

export interface BuildOptions {
  target: BuildTarget;
  /** Folder of the content-addressed cache; created when missing. */
  cacheDir: string;
  /** Units compiled at once; default os.availableParallelism(). */
  jobs?: number;
  /** nvcc to run; default $NVCC, else `nvcc` on PATH. */
  nvcc?: string;
  /** Functions whose spills do not fail the build: the caller acts on them (compile.ts launches a
   * segmented kernel that spills as its segments) from the report. */
  tolerateSpills?: (functionName: string) => boolean;
}

/** One function as ptxas reports it (`-Xptxas -v`). */
export interface FunctionResources {
  /** Mangled name, as cuModuleGetFunction wants it. */
  name: string;
  /** A __global__ entry point (false: a non-inlined device function; registers then 0). */
  entry: boolean;
  registers: number;
  /** Static shared memory only; dynamic shared memory is a launch parameter ptxas never sees. */
  sharedBytes: number;
  spillStoreBytes: number;
  spillLoadBytes: number;
  stackBytes: number;
  barriers: number;
  /** Why ptxas serialized its wgmma, where it did: the note's code and reason ("C7515: non wgmma instructions defining accumulator registers ..."). */
  wgmmaSerialized?: string;
}

export interface UnitReport {
  name: string;
  /** Content hash the cubin is cached under. */
  key: string;
  cubinBytes: number;
  cached: boolean;
  /** nvcc wall time of the compile that produced the cubin (also when served from the cache). */
  nvccSeconds: number;
  functions: FunctionResources[];
  /** nvcc/ptxas warning lines, if any. */
  warnings: string[];
}

export interface BuildReport {
  /** Units built (one cubin each). */
  kernels: number;
  /** Units served from the cache without running nvcc. */
  cached: number;
  /** Functions that spill (stores or loads > 0): only ones allowed to, a hot spill fails the build. */
  spills: number;
  seconds: number;
  nvccVersion: string;
  target: BuildTarget;
  /** The exact nvcc flag list (without input/output paths). */
  flags: string[];
  units: UnitReport[];
  /** Cubin bytes per unit name, for the caller to write into the artifact. */
  cubins: Map<string, Uint8Array>;
}
