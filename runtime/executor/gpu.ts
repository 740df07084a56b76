/**
 * GPU executor: a compiled module (one folder of a pipeline artifact, written by compileModel) run by
 * the GPU runtime, runtime/gpu/model.ts. This file is the whole seam between the pipelines and that
 * runtime, which offers
 *
 *   loadModel(dir): { run(inputs: Record<string, Tensor>): Record<string, Tensor>; close(): void;
 *                     memory: { arenaBytes, weightBytes, workspaceBytes, ... } }
 *
 * (it checks the artifact against the device, uploads the weights, captures a CUDA graph on the
 * first run). The adapter gives it the Executor interface; the graph's inputs and outputs are read
 * from the module's manifest.json (`inputs` / `outputs`: name -> "float32[1,64]"), so the pipelines
 * see the same shapes as on the CPU. `loadGpuRuntime()` imports runtime/gpu lazily: a machine
 * without a GPU never loads the CUDA bindings.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DType } from '../../compiler/ir/dtype.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import type { GraphRef } from '../pipeline/manifest.ts';
import type { Executor, ExecutorFactory, ValueInfo } from './types.ts';

/** What the pipelines need of a loaded module (runtime/gpu/model.ts's Model has it). */
export interface CompiledModule {
  run(inputs: Record<string, Tensor>): Record<string, Tensor> | Promise<Record<string, Tensor>>;
  close(): void;
  /** Device memory held, when known (dc_gpu_memory_bytes). */
  readonly memory?: { arenaBytes: number; weightBytes: number; workspaceBytes: number };
}
export interface GpuRuntime { loadModel(dir: string): CompiledModule | Promise<CompiledModule> }

/** Imports runtime/gpu/model.ts (CUDA bindings through koffi); throws with the reason when that fails. */
export async function loadGpuRuntime(): Promise<GpuRuntime> {
  const mod = await import('../gpu/model.ts');
  return { loadModel: (dir) => mod.loadModel(dir) };
}

/** "float32[1,64]" -> ValueInfo (a non-numeric dim stays symbolic). */
export function parseValueType(name: string, type: string): ValueInfo {
  const m = /^(\w+)\[(.*)\]$/.exec(type);
  if (!m) throw new Error(`value '${name}': expected a type like float32[1,64], found '${type}'`);
  const dims = m[2] === '' ? [] : m[2].split(',').map((d) => (/^\d+$/.test(d.trim()) ? Number(d) : d.trim()));
  return { name, dtype: m[1] as DType, shape: dims };
}

export function gpuExecutorFactory(runtime: GpuRuntime): ExecutorFactory {
  return async (graph: GraphRef): Promise<Executor> => {
    if (!graph.compiled) throw new Error(`${graph.onnx}: the ${graph.role} has no compiled module (serve a pipeline artifact built by \`npx compile\`)`);
    const dir = graph.compiled;
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { inputs: Record<string, string>; outputs: Record<string, string> };
    const module = await runtime.loadModel(dir);
    const mem = module.memory;
    return {
      description: `gpu (compiled) ${dir}`,
      inputs: Object.entries(manifest.inputs).map(([n, t]) => parseValueType(n, t)),
      outputs: Object.entries(manifest.outputs).map(([n, t]) => parseValueType(n, t)),
      run: async (inputs) => module.run(inputs),
      release: async () => { module.close(); },
      ...(mem ? { deviceBytes: () => mem.arenaBytes + mem.weightBytes + mem.workspaceBytes } : {}),
    };
  };
}
