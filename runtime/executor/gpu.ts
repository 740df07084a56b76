/**
 * GPU executor: a compiled module (one folder of a pipeline artifact, written by compileModel) run by
 * the GPU runtime, runtime/gpu/model.ts. This file is the whole seam between the pipelines and that
 * runtime, which offers
 *
 *   loadModel(dir, { syntheticWeights?, replicas?, bf16Bits?, weightsFrom?, arenaBytes?, arenaFrom? }): { run(inputs), runMany(list),
 *     start(list) -> finish(), denoise(loop)?, rgb8(inputs)?, close(), memory }
 *
 * (it checks the artifact against the device, uploads the weights — or, with `syntheticWeights`,
 * draws every learned weight on the GPU from that seed — and captures a CUDA graph on the first
 * run). The adapter gives it the Executor interface; the graph's inputs and outputs are read from the
 * module's manifest.json (`inputs` / `outputs`: name -> "bfloat16[1,64]"). run / runMany launch
 * through `start`, yield once, then wait (`finish`): a caller's synchronous work after the call (a
 * request's noise) overlaps the GPU. Runs of one module must not overlap (the model refuses a
 * start while another is in flight); pipelines run one request at a time (the server's queue).
 * `denoise` (the loop on the device) and `rgb8` (an image graph's output as RGB8, converted on the
 * device) are offered where the module has them. A GraphRef with `batched` (the same network compiled
 * at batch 2) loads that module too, over the first one's device weights: pairs of input sets (true
 * CFG) run on it as one stacked run, single ones on the first. A GraphRef with `variants` (the same
 * network compiled for other input shapes: shorter texts, other image sizes) loads each (and its batch-2 module) over the
 * first one's device weights too; every call goes to the variant whose inputs have the given shapes (rgb8 too).
 * With image sizes (GraphRef.size, ModuleVariant.size), forSize(size) keeps that size's modules: a
 * landscape size and its portrait take the same input shapes but not the same RoPE.
 * All of a GraphRef's modules run in the first one's activation memory, allocated as large as the
 * largest of theirs (their manifests' memory.arenaBytes): they run one at a time, so another size or
 * text length a pipeline serves adds no activation memory.
 *
 * Types at the seam: the pipelines work in float32; the compiled modules take and give bfloat16
 * where their graph does (the full-size exports). The runtime converts float32 inputs of a bfloat16
 * slot (round to nearest even) and decodes bfloat16 outputs into float32 storage (compiler/ir/
 * tensor.ts keeps every float type decoded), so the pipelines see the same values they would on the
 * CPU, at bfloat16 precision. Outputs come back undecoded, as bits tensors (./bf16.ts: the
 * pipelines read values through valuesOf), so a module's output passed on to the next module —
 * Flux.2's text embeddings, 7.9M values — is never converted. With `run(inputs, { outputsOnDevice:
 * true })` (RunOptions) the outputs stay in the module's memory until read (runtime/gpu/device-output.ts):
 * Flux.2's text embeddings go from the encoder's output slot to the transformer's input slot on the
 * device, never through the host. An input passed as the same Tensor object as in the module's previous run keeps
 * its staged bytes (executor/types.ts: a pipeline does not change a Tensor's values after passing
 * it), so Flux.2's text embeddings are staged once per request, not once per step.
 *
 * Synthetic weights: `gpuExecutorFactory(runtime, { syntheticWeights: SEED })` loads every module
 * with that seed, and every description says "[SYNTHETIC weights, seed SEED]", so a log line or
 * report built from it cannot pass for real weights. `loadGpuRuntime()` imports runtime/gpu lazily:
 * a machine without a GPU never loads the CUDA bindings.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fail } from '../../compiler/errors.ts';
import { join } from 'node:path';
import type { DType } from '../../compiler/ir/dtype.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import type { GraphRef } from '../pipeline/manifest.ts';
import type { ArenaLender, WeightsDonor } from '../gpu/model.ts';
import { splitSamples, stackSamples } from './batch.ts';
import type { DenoiseLoop, Executor, ExecutorFactory, RunOptions, ValueInfo } from './types.ts';

/** What the pipelines need of a loaded module (runtime/gpu/model.ts's Model has it). */
export interface CompiledModule {
  run(inputs: Record<string, Tensor>): Record<string, Tensor> | Promise<Record<string, Tensor>>;
  /** Several input sets at once, one per replica (GpuLoadOptions.replicas). */
  runMany?(list: Record<string, Tensor>[]): Record<string, Tensor>[] | Promise<Record<string, Tensor>[]>;
  /** run/runMany in two halves: launch now, finish() waits and collects (outputs left on the device with `outputsOnDevice`); finish.settled() first waits without holding Node's event loop (runtime/gpu/model.ts). */
  start?(list: Record<string, Tensor>[], options?: RunOptions): (() => Record<string, Tensor>[]) & { settled?(): Promise<void> };
  /** The denoising loop on the device (runtime/gpu/denoise.ts). */
  denoise?(loop: DenoiseLoop): Float32Array | Promise<Float32Array>;
  /** run() of an image graph, turned into interleaved RGB8 on the device (runtime/gpu/model.ts). */
  rgb8?(inputs: Record<string, Tensor>): Uint8Array | Promise<Uint8Array>;
  close(): void;
  /** Device memory held, when known (dc_gpu_memory_bytes). */
  readonly memory?: { arenaBytes: number; weightBytes: number; workspaceBytes: number; deviceUsedBytes?: number };
  /** The board it runs on: its PCI bus id names it to NVML (dc_gpu_energy_joules_total, runtime/gpu/nvml.ts). */
  readonly device?: { pciBusId?: string };
}
export interface GpuLoadOptions {
  /** Draw every learned weight on the GPU from this seed instead of reading weights.bin. */
  syntheticWeights?: number;
  /** bfloat16 outputs undecoded, as bits tensors (./bf16.ts); gpuExecutorFactory always asks for it. */
  bf16Bits?: boolean;
  /** Replicas of the activation memory for runs at once (runtime/gpu/model.ts); from GraphRef.concurrentRuns. */
  replicas?: number;
  /** A loaded module of the same network whose device weights this one reads (runtime/gpu/model.ts LoadOptions.weightsFrom). */
  weightsFrom?: WeightsDonor;
  /** Activation memory to allocate at least, to lend (runtime/gpu/model.ts LoadOptions.arenaBytes). */
  arenaBytes?: number;
  /** A loaded module of the same network whose activation memory this one runs in (runtime/gpu/model.ts LoadOptions.arenaFrom). */
  arenaFrom?: ArenaLender;
}
export interface GpuRuntime { loadModel(dir: string, options?: GpuLoadOptions): CompiledModule | Promise<CompiledModule> }

/** Imports runtime/gpu/model.ts (CUDA bindings through koffi); throws with the reason when that fails. */
export async function loadGpuRuntime(): Promise<GpuRuntime> {
  const mod = await import('../gpu/model.ts');
  return {
    loadModel: (dir, o) => mod.loadModel(dir, {
      ...(o?.syntheticWeights === undefined ? {} : { syntheticWeights: o.syntheticWeights }), ...(o?.bf16Bits ? { bf16Bits: true } : {}),
      ...(o?.replicas && o.replicas > 1 ? { replicas: o.replicas } : {}), ...(o?.weightsFrom ? { weightsFrom: o.weightsFrom } : {}),
      ...(o?.arenaBytes ? { arenaBytes: o.arenaBytes } : {}), ...(o?.arenaFrom ? { arenaFrom: o.arenaFrom } : {}),
    }),
  };
}

type ModuleManifest = { inputs: Record<string, string>; outputs: Record<string, string>; memory?: { arenaBytes?: number } };
/** A compiled module's manifest.json; a missing or unreadable one is named (the runtime checks the rest when it loads the module). */
function manifestOf(d: string): ModuleManifest {
  const path = join(d, 'manifest.json');
  if (!existsSync(path)) fail(path, 'a compiled module\'s manifest (npx compile writes it)', 'no such file');
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ModuleManifest;
  } catch (e) {
    return fail(path, 'a compiled module\'s manifest (JSON)', `unparsable JSON (${(e as Error).message}); truncated or edited?`);
  }
}

/** Every compiled module folder of a GraphRef: the first, its batch-2 module, each variant and its batch-2 module. */
export function moduleDirs(graph: GraphRef): string[] {
  return [graph.compiled, graph.batched, ...(graph.variants ?? []).flatMap((v) => [v.compiled, v.batched])].filter((d): d is string => !!d);
}

/** The largest activation arena of these modules (their manifests' memory.arenaBytes): what one memory for all of them needs. */
export function largestArena(dirs: readonly string[], read: (d: string) => ModuleManifest = manifestOf): number {
  return Math.max(0, ...dirs.map((d) => read(d).memory?.arenaBytes ?? 0));
}

/** The label every output of a synthetic-weights run carries. */
export const syntheticLabel = (seed: number) => `[SYNTHETIC weights, seed ${seed}]`;

/** "float32[1,64]" -> ValueInfo (a non-numeric dim stays symbolic). */
export function parseValueType(name: string, type: string): ValueInfo {
  const m = /^(\w+)\[(.*)\]$/.exec(type);
  if (!m) throw new Error(`value '${name}': expected a type like float32[1,64], found '${type}'`);
  const dims = m[2] === '' ? [] : m[2].split(',').map((d) => (/^\d+$/.test(d.trim()) ? Number(d) : d.trim()));
  return { name, dtype: m[1] as DType, shape: dims };
}

export type GpuExecutorOptions = GpuLoadOptions;

export function gpuExecutorFactory(runtime: GpuRuntime, options: GpuExecutorOptions = {}): ExecutorFactory {
  const seed = options.syntheticWeights;
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) throw new Error(`synthetic weights: expected a non-negative integer seed, found ${seed}`);
  const label = seed === undefined ? '' : ` ${syntheticLabel(seed)}`;
  return async (graph: GraphRef): Promise<Executor> => {
    if (!graph.compiled) throw new Error(`${graph.onnx}: the ${graph.role} has no compiled module (serve a pipeline artifact built by \`npx compile\`)`);
    const dir = graph.compiled;
    // Each module's manifest read once (its arena size first, its inputs when it loads).
    const manifests = new Map<string, ModuleManifest>();
    const read = (d: string) => manifests.get(d) ?? manifests.set(d, manifestOf(d)).get(d)!;
    const ioOf = (d: string) => {
      const manifest = read(d);
      return { inputs: Object.entries(manifest.inputs).map(([n, t]) => parseValueType(n, t)), outputs: Object.entries(manifest.outputs).map(([n, t]) => parseValueType(n, t)) };
    };
    const { inputs, outputs } = ioOf(dir);
    // One activation memory for all of them (they run one at a time): the largest arena any needs.
    const dirs = moduleDirs(graph);
    const arenaBytes = dirs.length > 1 ? largestArena(dirs, read) : undefined;
    // A batch-2 module beside (GraphRef.batched): pairs of runs (true CFG) go to it, stacked, over the same device weights.
    const replicas = !graph.batched && graph.concurrentRuns && graph.concurrentRuns > 1 ? graph.concurrentRuns : undefined;
    const weights = seed === undefined ? {} : { syntheticWeights: seed };
    const module = await runtime.loadModel(dir, { ...weights, bf16Bits: true, ...(replicas ? { replicas } : {}), ...(arenaBytes ? { arenaBytes } : {}) });
    const loaded: CompiledModule[] = [module];
    const entries: Entry[] = [];
    try {
      // The runtime's modules are donors and lenders (gpu/model.ts Model extends WeightsDonor, ArenaLender).
      const borrow = async (d: string, own: GpuLoadOptions = {}) => {
        const m = await runtime.loadModel(d, { ...weights, bf16Bits: true, ...own, weightsFrom: module as unknown as WeightsDonor, arenaFrom: module as unknown as ArenaLender });
        loaded.unshift(m); // closed before the donor
        return m;
      };
      const pairOf = async (d: string | undefined) => (d ? { module: await borrow(d), inputs: () => ioOf(d).inputs } : undefined);
      entries.push(entry(module, await pairOf(graph.batched), inputs, graph.size));
      // A variant's batch-1 module takes the replicas the first one has (pairs of runs without a batch-2 module).
      for (const v of graph.variants ?? []) entries.push(entry(await borrow(v.compiled, replicas ? { replicas } : {}), await pairOf(v.batched), ioOf(v.compiled).inputs, v.size));
    } catch (e) {
      for (const m of loaded) m.close();
      throw e;
    }
    const [first] = entries;
    const description = `gpu (compiled) ${dir}${graph.batched ? ` (+ batch 2: ${graph.batched})` : ''}${graph.variants?.length ? ` (+ ${graph.variants.length} input-shape variants)` : ''}${label}`;
    const memory = (m: CompiledModule) => (m.memory ? m.memory.deviceUsedBytes ?? m.memory.arenaBytes + m.memory.weightBytes + m.memory.workspaceBytes : 0);
    const sizes = [...new Set(entries.map((e) => e.size).filter((x): x is string => !!x))];
    return {
      ...calls(entries, description),
      ...(entries.length > 1 || first.batched || replicas ? { warmUp: async () => {
        // Every module, the first included (a first request with a short prompt reaches another variant), on every replica.
        for (const e of entries) {
          const p = placeholders(e.inputs);
          await (replicas && e.many ? e.many([p, p]) : e.one([p]));
          if (e.batched) await e.batched([placeholders(e.pairInputs!())]);
        }
      } } : {}),
      ...(sizes.length ? { forSize: (size: string) => {
        const some = entries.filter((e) => e.size === size);
        if (!some.length) throw new Error(`${dir}: no module compiled for size ${size} (has ${sizes.join(', ')})`);
        return { ...calls(some, `${description} at ${size}`), release: async () => undefined }; // releasing is the whole executor's
      } } : {}),
      release: async () => { for (const m of loaded) m.close(); },
      ...(module.memory ? { deviceBytes: () => loaded.reduce((a, m) => a + memory(m), 0) } : {}),
      ...(module.device?.pciBusId ? { deviceBusId: () => module.device!.pciBusId! } : {}),
    };

    /** The calls over some of the entries (all of them, or one size's): each goes to the entry whose inputs have the given shapes. */
    function calls(some: Entry[], description: string): Omit<Executor, 'release'> {
      const [head] = some;
      const pick = (given: Record<string, Tensor>) => (some.length === 1 ? head : some.find((e) => e.takes(given)) ?? noEntry(dir, given, some));
      return {
        description, inputs: head.inputs, outputs,
        ...(some.length > 1 ? { variants: some.slice(1).map((e) => e.inputs) } : {}),
        run: async (given, options) => (await pick(given).one([given], options))[0],
        // Pairs: stacked on the batch-2 module, else at once on the replicas, else one after the other (runs of one module must not overlap).
        ...(first.batched || (replicas && first.many) ? { runMany: async (list: Record<string, Tensor>[]) => {
          const e = pick(list[0]);
          if (list.length === 2 && e.batched) return splitSamples((await e.batched([stackSamples(list)]))[0], 2);
          if (replicas && e.many) return e.many(list);
          const outs: Record<string, Tensor>[] = [];
          for (const x of list) outs.push((await e.one([x]))[0]);
          return outs;
        } } : {}),
        ...(first.loop ? { denoise: async (l: DenoiseLoop) => {
          // The loop's input sets hold no latents: their shape picks the variant too (image sizes whose other inputs agree: Qwen-Image's).
          const e = pick({ ...l.inputs[0], [l.latentsInput]: new Tensor('float32', [...l.latentsShape], l.latents) });
          return l.inputs.length === 2 && e.pairLoop ? e.pairLoop(l) : e.loop!(l);
        } } : {}),
        ...(first.rgb8 ? { rgb8: async (x: Record<string, Tensor>) => pick(x).rgb8!(x) } : {}),
      };
    }
  };
}

// Launch, then wait without holding Node's event loop (settled(), where the module has it; else one yield): the
// caller's synchronous work after the call (a request's noise) runs while the GPU works, and so do the server's other
// requests. Pipelines run one request at a time (the server's queue).
const launched = (m: CompiledModule) => async (list: Record<string, Tensor>[], options?: RunOptions) => {
  const finish = m.start!(list, options);
  await (finish.settled ? finish.settled() : null);
  return finish();
};

/** One input signature the executor runs: its batch-1 module and, where there is one, its batch-2 module. */
interface Entry {
  inputs: ValueInfo[];
  /** The batch-2 module's inputs (read from its manifest when asked: a warm-up). */
  pairInputs?: () => ValueInfo[];
  /** `options.outputsOnDevice` where the module can (start): else host outputs. */
  one: (list: Record<string, Tensor>[], options?: RunOptions) => Promise<Record<string, Tensor>[]>;
  /** Several input sets at once on the module's replicas (GpuLoadOptions.replicas), where it has runMany. */
  many?: (list: Record<string, Tensor>[]) => Promise<Record<string, Tensor>[]>;
  batched?: (list: Record<string, Tensor>[]) => Promise<Record<string, Tensor>[]>;
  loop?: (l: DenoiseLoop) => Promise<Float32Array>;
  pairLoop?: (l: DenoiseLoop) => Promise<Float32Array>;
  /** The module's run() as RGB8 (an image graph: each VAE decoder size has its own). */
  rgb8?: (inputs: Record<string, Tensor>) => Promise<Uint8Array>;
  /** Do the given inputs (those named) have this module's shapes? */
  takes: (given: Record<string, Tensor>) => boolean;
  /** The image size it was compiled for (GraphRef.size), where the network has modules of several. */
  size?: string;
}

function entry(module: CompiledModule, pair: { module: CompiledModule; inputs: () => ValueInfo[] } | undefined, inputs: ValueInfo[], size?: string): Entry {
  const runOf = (m: CompiledModule) => (m.start ? launched(m) : async (list: Record<string, Tensor>[]) => [await m.run(list[0])]);
  const loopOf = (m: CompiledModule | undefined) => (m?.denoise ? async (l: DenoiseLoop) => m.denoise!(l) : undefined);
  const shapes = new Map(inputs.map((i) => [i.name, i.shape.join(',')]));
  return {
    inputs, ...(pair ? { pairInputs: pair.inputs, batched: runOf(pair.module) } : {}), one: runOf(module), loop: loopOf(module), pairLoop: loopOf(pair?.module),
    ...(module.rgb8 ? { rgb8: async (x: Record<string, Tensor>) => module.rgb8!(x) } : {}),
    ...(module.runMany ? { many: module.start ? launched(module) : async (list: Record<string, Tensor>[]) => module.runMany!(list) } : {}),
    takes: (given) => Object.entries(given).every(([name, t]) => !shapes.has(name) || shapes.get(name) === t.shape.join(',')),
    ...(size ? { size } : {}),
  };
}

/** Inputs of a module's shapes for a warm-up run: zeros in float inputs, ones in integer and bool ones (a mask keeps every token). */
export function placeholders(inputs: readonly ValueInfo[]): Record<string, Tensor> {
  return Object.fromEntries(inputs.map((i) => {
    const shape = i.shape.map((d) => (typeof d === 'number' ? d : 1));
    const t = Tensor.zeros(i.dtype, shape);
    if (/^(u?int\d+|bool)$/.test(i.dtype)) {
      const data = t.data as { fill(v: number | bigint): unknown };
      data.fill(t.data instanceof BigInt64Array || t.data instanceof BigUint64Array ? 1n : 1);
    }
    return [i.name, t];
  }));
}

function noEntry(dir: string, given: Record<string, Tensor>, entries: Entry[]): never {
  const named = (list: ValueInfo[]) => list.filter((i) => i.name in given).map((i) => `${i.name} [${i.shape}]`).join(', ');
  const asked = Object.entries(given).map(([n, t]) => `${n} [${t.shape}]`).join(', ');
  throw new Error(`${dir}: no compiled variant takes ${asked}; they take: ${entries.map((e) => named(e.inputs)).join(' | ')}`);
}
