/**
 * Picks the executor a pipeline runs on, and says why (the server logs the reason):
 *
 *   --executor cpu                      -> cpu
 *   no NVIDIA driver (/proc/driver/nvidia/version absent)
 *                                       -> cpu ("no GPU found")
 *   a GPU, but the manifest has no compiled modules (a plain pipeline description)
 *                                       -> cpu (says to compile the pipeline)
 *   a GPU, compiled modules, but runtime/gpu cannot be loaded
 *                                       -> cpu (says why)
 *   a GPU, compiled modules, runtime/gpu loads
 *                                       -> gpu (gpu.ts: compiled modules through runtime/gpu)
 *
 * `syntheticWeights` (a seed) goes to every GPU module (gpu.ts) and into the reason; the CPU executor
 * has no synthetic weights, so asking for them there is an error rather than a silent real-weights run.
 *
 * With `--executor gpu` each cpu fallback above is an error instead. The probe path and the runtime
 * loader are parameters so the choice is testable on a machine without a GPU. (serve also falls back
 * to the CPU, saying why, when the chosen compiled modules then fail to load, e.g. pending kernels.)
 */
import { existsSync } from 'node:fs';
import type { PipelineManifest } from '../pipeline/manifest.ts';
import { type GpuRuntime, gpuExecutorFactory, loadGpuRuntime, syntheticLabel } from './gpu.ts';
import { cpuExecutorFactory } from './ort.ts';
import type { ExecutorFactory, ExecutorKind } from './types.ts';

export interface ExecutorChoice { kind: ExecutorKind; factory: ExecutorFactory; reason: string }
export type ExecutorPreference = 'auto' | 'cpu' | 'gpu';
export const EXECUTOR_PREFERENCES: readonly ExecutorPreference[] = ['auto', 'cpu', 'gpu'];

export interface SelectOptions {
  prefer?: ExecutorPreference;
  /** A file whose presence means an NVIDIA driver (and GPU) is there. */
  gpuProbe?: string;
  loadRuntime?: () => Promise<GpuRuntime>;
  /** GPU only: draw every learned weight from this seed (structure-only artifacts); labelled in every description. */
  syntheticWeights?: number;
}

export class ExecutorUnavailable extends Error {}

const CPU = 'the CPU executor (onnxruntime-node)';

export async function selectExecutor(m: PipelineManifest, opts: SelectOptions = {}): Promise<ExecutorChoice> {
  const prefer = opts.prefer ?? 'auto';
  const probe = opts.gpuProbe ?? '/proc/driver/nvidia/version';
  const cpu = (why: string): ExecutorChoice => {
    if (prefer === 'gpu' || opts.syntheticWeights !== undefined) throw new ExecutorUnavailable(`${prefer === 'gpu' ? '--executor gpu' : '--synthetic-weights (GPU only)'}: ${why}`);
    return { kind: 'cpu', factory: cpuExecutorFactory, reason: `${why}: using ${CPU}` };
  };
  if (opts.syntheticWeights !== undefined && prefer === 'cpu') throw new ExecutorUnavailable('--synthetic-weights: the CPU executor runs the graphs\' own weights; synthetic weights need the GPU executor');
  if (prefer === 'cpu') return { kind: 'cpu', factory: cpuExecutorFactory, reason: `--executor cpu: using ${CPU}` };
  if (!existsSync(probe)) return cpu(`no GPU found (no NVIDIA driver at ${probe})`);
  if (!m.modules) return cpu(`a GPU is present, but ${m.path} has no compiled modules (build a pipeline artifact with \`npx compile\`)`);
  let runtime: GpuRuntime;
  try {
    runtime = await (opts.loadRuntime ?? loadGpuRuntime)();
  } catch (e) {
    return cpu(`a GPU is present, but the GPU runtime could not be loaded (${(e as Error).message.split('\n')[0]})`);
  }
  const seed = opts.syntheticWeights;
  const weights = seed === undefined ? '' : `, ${syntheticLabel(seed)}`;
  return { kind: 'gpu', factory: gpuExecutorFactory(runtime, { syntheticWeights: seed }), reason: `a GPU is present: running the compiled modules (${m.compiled?.target ?? 'unknown target'}, ${m.compiled?.precision ?? 'unknown precision'}${weights})` };
}
