/**
 * GPU executor: a compiled module (one folder of a pipeline artifact, written by compileModel) run by
 * the GPU runtime (runtime/gpu, issue 7). This file is the whole seam between the pipelines and that
 * runtime. It expects `runtime/gpu/index.ts` to export
 *
 *   loadModel(dir: string): Promise<CompiledModule>     // checks the artifact, uploads weights
 *   CompiledModule = { run(inputs: Record<string, Tensor>): Promise<Record<string, Tensor>>; release(): unknown;
 *                      deviceBytes?(): number }
 *
 * and adapts it to the Executor interface; the graph's inputs and outputs are read from the module's
 * manifest.json (`inputs` / `outputs`: name -> "float32[1,64]"), so the pipelines see the same
 * shapes as on the CPU. `loadGpuRuntime()` imports runtime/gpu lazily: a machine without a GPU never
 * loads the CUDA bindings.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DType } from '../../compiler/ir/dtype.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import type { GraphRef } from '../pipeline/manifest.ts';
import type { Executor, ExecutorFactory, ValueInfo } from './types.ts';

export interface CompiledModule {
  run(inputs: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  release(): unknown;
  /** Device memory held (optional; shown as dc_gpu_memory_bytes). */
  deviceBytes?(): number;
}
export interface GpuRuntime { loadModel(dir: string): Promise<CompiledModule> }

/** Imports runtime/gpu; throws (with its reason) when it is absent or does not offer loadModel. */
export async function loadGpuRuntime(): Promise<GpuRuntime> {
  // A computed specifier while runtime/gpu/index.ts does not exist yet (a literal one would not
  // type-check); once it does, write the literal so bundlers (esbuild) follow it.
  const spec = new URL('../gpu/index.ts', import.meta.url).href;
  const mod = (await import(spec)) as Partial<GpuRuntime>;
  if (typeof mod.loadModel !== 'function') throw new Error('runtime/gpu/index.ts does not export loadModel(dir)');
  return mod as GpuRuntime;
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
    return {
      description: `gpu (compiled) ${dir}`,
      inputs: Object.entries(manifest.inputs).map(([n, t]) => parseValueType(n, t)),
      outputs: Object.entries(manifest.outputs).map(([n, t]) => parseValueType(n, t)),
      run: (inputs) => module.run(inputs),
      release: async () => { await module.release(); },
      ...(module.deviceBytes ? { deviceBytes: () => module.deviceBytes!() } : {}),
    };
  };
}
