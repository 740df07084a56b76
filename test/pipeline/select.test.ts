/**
 * runtime/executor/select.ts and the GPU seam (gpu.ts) on a machine without a GPU: the probe and the
 * runtime loader are injected, so each branch is exercised — no driver -> CPU; a GPU but a plain
 * description -> CPU saying to compile; a GPU and compiled modules but runtime/gpu failing to load
 * -> CPU saying why; all present -> the GPU executor, whose executors load each module folder
 * through runtime/gpu's loadModel (shaped like runtime/gpu/model.ts's Model) and describe the graph
 * from the module's manifest; --executor cpu / gpu forcing or failing; and the real runtime/gpu
 * module importing on a machine without a GPU (it binds CUDA only when a model loads).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { type CompiledModule, gpuExecutorFactory, loadGpuRuntime, parseValueType } from '../../runtime/executor/gpu.ts';
import { ExecutorUnavailable, selectExecutor } from '../../runtime/executor/select.ts';
import { ROOT } from '../../runtime/paths.ts';
import { type GraphRef, type PipelineManifest, ROLES, graphRef, loadManifest } from '../../runtime/pipeline/manifest.ts';
import { loadAll } from '../../runtime/executor/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'select-'));
const probe = join(dir, 'nvidia-version');
writeFileSync(probe, 'NVRM version: test\n');
const noProbe = join(dir, 'absent');
const description = loadManifest(join(ROOT, 'models', 'flux2', 'tiny.pipeline.json'));

/** The description plus three fake compiled module folders (manifest.json with the graphs' I/O). */
function withModules(): PipelineManifest {
  const modules = {} as NonNullable<PipelineManifest['modules']>;
  for (const role of ['textEncoder', 'transformer', 'vaeDecoder'] as const) {
    const d = join(dir, role);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'manifest.json'), JSON.stringify({ format: 2, model: role, inputs: { x: 'float32[1,4]', ids: 'int64[1,img_tokens]' }, outputs: { y: 'float32[1,4]' } }));
    modules[role] = d;
  }
  return { ...description, modules, compiled: { target: 'h100', arch: 'sm_90a', precision: 'fp8' } };
}

describe('selectExecutor', () => {
  it('no NVIDIA driver: the CPU executor, saying so', async () => {
    const c = await selectExecutor(description, { gpuProbe: noProbe });
    expect(c.kind).toBe('cpu');
    expect(c.reason).toBe(`no GPU found (no NVIDIA driver at ${noProbe}): using the CPU executor (onnxruntime-node)`);
  });

  it('a GPU but a description without compiled modules: CPU, saying to compile', async () => {
    const c = await selectExecutor(description, { gpuProbe: probe, loadRuntime: async () => { throw new Error('must not be loaded'); } });
    expect(c.kind).toBe('cpu');
    expect(c.reason).toMatch(/a GPU is present, but .*tiny.pipeline.json has no compiled modules \(build a pipeline artifact with `npx compile`\)/);
  });

  it('a GPU and compiled modules, but runtime/gpu does not load: CPU, saying why', async () => {
    const c = await selectExecutor(withModules(), { gpuProbe: probe, loadRuntime: async () => { throw new Error('libcuda.so.1: cannot open shared object file'); } });
    expect(c.kind).toBe('cpu');
    expect(c.reason).toContain('the GPU runtime could not be loaded (libcuda.so.1: cannot open shared object file)');
  });

  it('a GPU, compiled modules and the runtime: the GPU executor over each module folder', async () => {
    const m = withModules();
    const loaded: string[] = [];
    const runtime = {
      loadModel: async (d: string): Promise<CompiledModule> => {
        loaded.push(d);
        return { run: (inputs) => ({ y: new Tensor('float32', [1, 4], (inputs.x.data as Float32Array).map((v) => v * 2)) }), close: () => undefined, memory: { arenaBytes: 600, weightBytes: 300, workspaceBytes: 100 }, device: { pciBusId: '00000000:19:00.0' } };
      },
    };
    const c = await selectExecutor(m, { gpuProbe: probe, loadRuntime: async () => runtime });
    expect(c.kind).toBe('gpu');
    expect(c.reason).toBe('a GPU is present: running the compiled modules (h100, fp8)');
    const exec = await c.factory({ role: 'transformer', onnx: m.graphs.transformer, compiled: m.modules!.transformer });
    expect(loaded).toEqual([m.modules!.transformer]);
    expect(exec.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [1, 4] }, { name: 'ids', dtype: 'int64', shape: [1, 'img_tokens'] }]);
    expect(exec.deviceBytes?.()).toBe(1000);
    expect(exec.deviceBusId?.()).toBe('00000000:19:00.0'); // the board the server reads the energy of (dc_gpu_energy_joules_total)
    const out = await exec.run({ x: new Tensor('float32', [1, 4], Float32Array.of(1, 2, 3, 4)) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, 4, 6, 8]);
    await expect(c.factory({ role: 'vaeDecoder', onnx: m.graphs.vaeDecoder })).rejects.toThrow(/the vaeDecoder has no compiled module/);
  });

  it('--executor cpu forces the CPU; --executor gpu fails where the GPU executor cannot run', async () => {
    expect((await selectExecutor(withModules(), { prefer: 'cpu', gpuProbe: probe, loadRuntime: async () => ({ loadModel: async () => { throw new Error('unused'); } }) })).kind).toBe('cpu');
    await expect(selectExecutor(description, { prefer: 'gpu', gpuProbe: noProbe })).rejects.toThrow(ExecutorUnavailable);
    await expect(selectExecutor(description, { prefer: 'gpu', gpuProbe: probe })).rejects.toThrow(/^--executor gpu: a GPU is present, but .* has no compiled modules/);
  });
});

describe('synthetic weights through the executor', () => {
  const fakeRuntime = (seen: { dir: string; options: unknown }[]) => ({
    loadModel: async (d: string, options?: unknown): Promise<CompiledModule> => {
      seen.push({ dir: d, options });
      return { run: () => ({}), close: () => undefined, memory: { arenaBytes: 1, weightBytes: 2, workspaceBytes: 3, deviceUsedBytes: 7 } };
    },
  });

  it('selectExecutor carries the seed to every module, and the reason and each description say so', async () => {
    const m = withModules();
    const seen: { dir: string; options: unknown }[] = [];
    const c = await selectExecutor(m, { gpuProbe: probe, loadRuntime: async () => fakeRuntime(seen), syntheticWeights: 42 });
    expect(c.reason).toBe('a GPU is present: running the compiled modules (h100, fp8, [SYNTHETIC weights, seed 42])');
    const execs = await loadAll(c.factory, ROLES.map((role) => graphRef(m, role)));
    expect(seen).toEqual(ROLES.map((role) => ({ dir: m.modules![role], options: { syntheticWeights: 42, bf16Bits: true } })));
    for (const e of execs) expect(e.description).toMatch(/^gpu \(compiled\) .* \[SYNTHETIC weights, seed 42\]$/);
    expect(execs[0].deviceBytes?.()).toBe(7); // measured device memory when the runtime knows it
    expect(execs[0].deviceBusId).toBeUndefined(); // a module that does not say its board
  });

  it('without a seed the modules load their own weights and nothing is labelled', async () => {
    const seen: { dir: string; options: unknown }[] = [];
    const c = await selectExecutor(withModules(), { gpuProbe: probe, loadRuntime: async () => fakeRuntime(seen) });
    const e = await c.factory(graphRef(withModules(), 'transformer'));
    expect(seen[0].options).toEqual({ bf16Bits: true }); // outputs as bfloat16 bits (runtime/executor/bf16.ts), always
    expect(e.description).not.toContain('SYNTHETIC');
  });

  it('seed 0 is carried and labelled like any other; a bad seed is refused', async () => {
    const seen: { dir: string; options: unknown }[] = [];
    const f = gpuExecutorFactory(fakeRuntime(seen), { syntheticWeights: 0 });
    const e = await f(graphRef(withModules(), 'vaeDecoder'));
    expect(seen[0].options).toEqual({ syntheticWeights: 0, bf16Bits: true });
    expect(e.description).toMatch(/ \[SYNTHETIC weights, seed 0\]$/);
    expect(() => gpuExecutorFactory(fakeRuntime(seen), { syntheticWeights: -1 })).toThrow('synthetic weights: expected a non-negative integer seed, found -1');
  });

  it('synthetic weights never fall back to the CPU (it would run real weights unlabelled)', async () => {
    await expect(selectExecutor(withModules(), { prefer: 'cpu', syntheticWeights: 1 })).rejects.toThrow(/--synthetic-weights: the CPU executor runs the graphs' own weights/);
    await expect(selectExecutor(withModules(), { gpuProbe: noProbe, syntheticWeights: 1 })).rejects.toThrow(/^--synthetic-weights \(GPU only\): no GPU found/);
  });
});

describe('loadAll', () => {
  it('releases the executors that loaded when another fails (no device memory left behind)', async () => {
    const released: string[] = [];
    const factory = async (g: GraphRef) => {
      if (g.role === 'transformer') throw new Error('pending kernels: FusedAttention');
      return { description: g.role, inputs: [], outputs: [], run: async () => ({}), release: async () => { released.push(g.role); } };
    };
    await expect(loadAll(factory, ROLES.map((role) => graphRef(description, role)))).rejects.toThrow('pending kernels: FusedAttention');
    expect(released.sort()).toEqual(['textEncoder', 'vaeDecoder']);
  });
});

describe('loadGpuRuntime', () => {
  it('imports runtime/gpu/model.ts without touching CUDA', async () => {
    expect(typeof (await loadGpuRuntime()).loadModel).toBe('function');
  });
});

describe('parseValueType', () => {
  it('reads the module manifest types; rejects anything else naming the value', () => {
    expect(parseValueType('t', 'float32[1]')).toEqual({ name: 't', dtype: 'float32', shape: [1] });
    expect(parseValueType('s', 'float32[]')).toEqual({ name: 's', dtype: 'float32', shape: [] });
    expect(() => parseValueType('q', 'seq<float32>(2)')).toThrow("value 'q': expected a type like float32[1,64], found 'seq<float32>(2)'");
  });
});
