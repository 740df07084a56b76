/**
 * The two bundled tiny pipelines end to end on the CPU executor (tokenizer -> text encoder ->
 * denoising loop -> tiled VAE decode -> RGB8), few steps: output size, determinism per seed, that
 * the prompt, the seed, the guidance value and Qwen's negative prompt each change the image, the
 * manifest-vs-graph checks at load, and cancellation between steps.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { cpuExecutorFactory } from '../../runtime/executor/ort.ts';
import type { DenoiseLoop, Executor, ExecutorFactory } from '../../runtime/executor/types.ts';
import { denoise, hostDenoise } from '../../runtime/pipeline/denoise.ts';
import { ROOT } from '../../runtime/paths.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { AbortedError, type GenerateRequest, type Pipeline } from '../../runtime/pipeline/types.ts';

const manifest = (family: string) => join(ROOT, 'models', family, 'tiny.pipeline.json');
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
let flux: Pipeline, qwen: Pipeline;
beforeAll(async () => { [flux, qwen] = await Promise.all([loadPipeline(manifest('flux2'), cpuExecutorFactory), loadPipeline(manifest('qwen_image'), cpuExecutorFactory)]); });
afterAll(async () => { await Promise.all([flux.release(), qwen.release()]); });

const base: GenerateRequest = { prompt: 'a red fox', size: { width: 64, height: 64 }, steps: 2, guidanceScale: 4, seed: 1 };

describe('tiny Flux.2 pipeline', () => {
  it('loads from its manifest with the sizes and defaults it declares', () => {
    expect(flux.family).toBe('flux2');
    expect(flux.sizes).toEqual([{ width: 64, height: 64 }]);
    expect(flux.defaults).toEqual({ steps: 4, guidanceScale: 4 });
    expect(flux.executors.every((d) => d.startsWith('cpu (onnxruntime-node)'))).toBe(true);
  });

  it('generates a 64x64 RGB image, byte-identical for the same seed, different for another', async () => {
    const steps: number[] = [];
    const a = await flux.generate({ ...base, onStep: (s) => steps.push(s) });
    expect(a.rgb).toHaveLength(64 * 64 * 3);
    expect(steps).toEqual([1, 2]);
    expect(new Set(a.rgb).size).toBeGreaterThan(50); // not a flat image
    expect(same(a.rgb, (await flux.generate(base)).rgb)).toBe(true);
    expect(same(a.rgb, (await flux.generate({ ...base, seed: 2 })).rgb)).toBe(false);
  });

  it('prompt and guidance value reach the model; [IMG] is removed and reported', async () => {
    const a = await flux.generate(base);
    expect(same(a.rgb, (await flux.generate({ ...base, prompt: 'a blue whale' })).rgb)).toBe(false);
    expect(same(a.rgb, (await flux.generate({ ...base, guidanceScale: 1 })).rgb)).toBe(false);
    const img = await flux.generate({ ...base, prompt: 'a red[IMG] fox' });
    expect(img.revisedPrompt).toBe('a red fox');
    expect(a.revisedPrompt).toBeUndefined();
  });

  it('rejects a negative prompt (guidance-distilled)', async () => {
    await expect(flux.generate({ ...base, negativePrompt: 'x' })).rejects.toThrow(/no negative prompt/);
  });

  it('stops at the next step when aborted', async () => {
    const ctl = new AbortController();
    const steps: number[] = [];
    await expect(flux.generate({ ...base, steps: 4, signal: ctl.signal, onStep: (s) => { steps.push(s); if (s === 1) ctl.abort(); } }))
      .rejects.toBeInstanceOf(AbortedError);
    expect(steps).toEqual([1]);
  });
});

describe('tiny Qwen-Image pipeline', () => {
  it('generates deterministically; true CFG with a negative prompt changes the image', async () => {
    const a = await qwen.generate(base);
    expect(a.rgb).toHaveLength(64 * 64 * 3);
    expect(same(a.rgb, (await qwen.generate(base)).rgb)).toBe(true);
    const cfg = await qwen.generate({ ...base, negativePrompt: ' ' });
    expect(same(a.rgb, cfg.rgb)).toBe(false);
    expect(same(cfg.rgb, (await qwen.generate({ ...base, negativePrompt: ' ' })).rgb)).toBe(true);
    expect(same(cfg.rgb, (await qwen.generate({ ...base, negativePrompt: 'blurry' })).rgb)).toBe(false);
    // diffusers: CFG only when true_cfg_scale > 1
    expect(same(a.rgb, (await qwen.generate({ ...base, negativePrompt: ' ', guidanceScale: 1 })).rgb)).toBe(true);
  });

  it('asks for two concurrent text-encoder and transformer runs, and with executors that offer runMany encodes both prompts in one call and runs both CFG passes in one call per step: the same image', async () => {
    const asked: (number | undefined)[] = [];
    const many = { textEncoder: 0, transformer: 0 };
    const factory: ExecutorFactory = async (g) => {
      const e = await cpuExecutorFactory(g);
      asked.push(g.concurrentRuns);
      if (g.role === 'vaeDecoder') return e;
      const role = g.role;
      return { ...e, run: (x) => e.run(x), release: () => e.release(), runMany: async (list) => { many[role]++; expect(list).toHaveLength(2); const out = []; for (const x of list) out.push(await e.run(x)); return out; } };
    };
    const paired = await loadPipeline(manifest('qwen_image'), factory);
    try {
      expect(asked).toEqual([2, 2, undefined]); // text encoder, transformer, VAE
      const req = { ...base, negativePrompt: ' ' };
      expect(same((await paired.generate(req)).rgb, (await qwen.generate(req)).rgb)).toBe(true);
      expect(many).toEqual({ textEncoder: 1, transformer: req.steps });
      many.textEncoder = many.transformer = 0;
      await paired.generate(base); // no CFG: one prompt, one pass a step through run()
      expect(many).toEqual({ textEncoder: 0, transformer: 0 });
    } finally {
      await paired.release();
    }
  });
});

describe('an executor with a denoising loop of its own (the GPU one runs it on the device)', () => {
  it('gets the whole loop in one call per request, with the CFG sets and scale when there is a negative prompt: the same images', async () => {
    const loops: DenoiseLoop[] = [];
    let runs = 0;
    const factory: ExecutorFactory = async (g) => {
      const e = await cpuExecutorFactory(g);
      if (g.role !== 'transformer') return e;
      // The loop as the device runs it, here through the host implementation over a counted run().
      const counted: Executor = { ...e, run: (x) => { runs++; return e.run(x); }, release: () => e.release() };
      return { ...counted, denoise: (loop) => { loops.push(loop); return hostDenoise(counted, loop); } };
    };
    const [f, q] = await Promise.all([loadPipeline(manifest('flux2'), factory), loadPipeline(manifest('qwen_image'), factory)]);
    try {
      const seen: (Float32Array | undefined)[] = [];
      expect(same((await f.generate({ ...base, onStep: (_s, _t, l) => seen.push(l) })).rgb, (await flux.generate(base)).rgb)).toBe(true);
      expect(loops).toHaveLength(1);
      expect(loops[0]).toMatchObject({ latentsInput: 'hidden_states', timestepInput: 'timestep' });
      expect(loops[0].inputs).toHaveLength(1);
      expect(loops[0].cfg).toBeUndefined();
      expect(loops[0].timesteps).toHaveLength(base.steps);
      expect(seen).toHaveLength(base.steps);
      const req = { ...base, negativePrompt: ' ' };
      expect(same((await q.generate(req)).rgb, (await qwen.generate(req)).rgb)).toBe(true);
      expect(loops[1].inputs).toHaveLength(2);
      expect(loops[1].cfg).toEqual({ scale: req.guidanceScale, channels: 64 });
      expect(runs).toBe(base.steps + 2 * req.steps);
    } finally {
      await Promise.all([f.release(), q.release()]);
    }
  });

  it('the step device times a loop reports become the image\'s timings.stepsMs; a host loop reports none', async () => {
    const factory: ExecutorFactory = async (g) => {
      const e = await cpuExecutorFactory(g);
      if (g.role !== 'transformer') return e;
      // The host loop, its steps reported as a device loop reports them (step k: 10k ms).
      return { ...e, run: (x) => e.run(x), release: () => e.release(), denoise: (loop) => hostDenoise(e, { ...loop, onStep: (k) => loop.onStep?.(k, undefined, 10 * k) }) };
    };
    const [f, q] = await Promise.all([loadPipeline(manifest('flux2'), factory), loadPipeline(manifest('qwen_image'), factory)]);
    try {
      const steps: number[] = [];
      expect((await f.generate({ ...base, onStep: (k, total) => steps.push(k, total) })).timings.stepsMs).toEqual([10, 20]);
      expect(steps).toEqual([1, 2, 2, 2]); // the request still sees each step
      expect((await q.generate({ ...base, negativePrompt: ' ' })).timings.stepsMs).toEqual([10, 20]);
      expect((await flux.generate(base)).timings).not.toHaveProperty('stepsMs');
    } finally {
      await Promise.all([f.release(), q.release()]);
    }
  });

  it('a loop with the wrong number of sigmas or input sets is refused before it runs', async () => {
    const exec = { denoise: async () => new Float32Array(0) } as unknown as Executor;
    const loop: DenoiseLoop = { inputs: [{}], latentsInput: 'x', timestepInput: 't', latents: new Float32Array(4), latentsShape: [1, 2, 2], sigmas: new Float32Array(2), timesteps: new Float32Array(2) };
    expect(() => denoise(exec, loop)).toThrow(/2 sigmas for 2 steps \(expected 3\)/);
    expect(() => denoise(exec, { ...loop, sigmas: new Float32Array(3), cfg: { scale: 4, channels: 2 } })).toThrow(/1 input sets with CFG \(expected 2\)/);
    expect(() => denoise(exec, { ...loop, sigmas: new Float32Array(3), latentsShape: [1, 4, 2] })).toThrow(/4 latents for the shape \[1,4,2\] \(8 values\)/);
  });

  // Regression, was a bug (hostDenoise): a symbolic latents dim (a dynamic export's img_tokens) became
  // the whole latents count, so the first run got a [1, 8, 4] tensor over 8 values and threw.
  it('the host loop gives the graph the latents in the shape the loop names, whatever the graph declares symbolically', async () => {
    const seen: number[][] = [];
    const exec: Executor = {
      description: 'stand-in', outputs: [{ name: 'v', dtype: 'float32', shape: [1, 'img_tokens', 4] }],
      inputs: [{ name: 'x', dtype: 'float32', shape: [1, 'img_tokens', 4] }, { name: 't', dtype: 'float32', shape: [1] }],
      run: async (given) => { seen.push([...given.x.shape]); return { v: new Tensor('float32', [...given.x.shape], new Float32Array(8).fill(1)) }; },
      release: async () => undefined,
    };
    const out = await hostDenoise(exec, { inputs: [{}], latentsInput: 'x', timestepInput: 't', latents: new Float32Array(8), latentsShape: [1, 2, 4], sigmas: Float32Array.of(1, 0.5, 0), timesteps: Float32Array.of(1, 0.5) });
    expect(seen).toEqual([[1, 2, 4], [1, 2, 4]]);
    expect(Array.from(out)).toEqual(new Array(8).fill(-1)); // 0 + (0.5 - 1) + (0 - 0.5), v = 1
  });
});

describe('manifest checks at load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pipeline-manifest-'));
  const variant = (patch: Record<string, unknown>) => {
    const m = { ...JSON.parse(readFileSync(manifest('flux2'), 'utf8')), ...patch };
    for (const k of ['tokenizer']) m[k] = join(ROOT, 'models', 'flux2', m[k]);
    m.graphs = Object.fromEntries(Object.entries(m.graphs as Record<string, string>).map(([k, v]) => [k, join(ROOT, 'models', 'flux2', v)]));
    const file = join(dir, `${Object.keys(patch).join('-')}.json`);
    writeFileSync(file, JSON.stringify(m));
    return file;
  };
  it('a size the exports were not traced at re-specialises the graphs at load (runtime/pipeline/sized-graphs.ts), and only listed sizes run', async () => {
    const p = await loadPipeline(variant({ sizes: ['128x128'] }), cpuExecutorFactory);
    try {
      expect(p.executors[1]).toMatch(/dc-ort-graphs/); // the transformer's graph at 32 x 32 tokens, from the cache
      const img = await p.generate({ prompt: 'a red fox', size: { width: 128, height: 128 }, steps: 1, guidanceScale: 4, seed: 3 });
      expect(img.rgb).toHaveLength(128 * 128 * 3);
      await expect(p.generate({ prompt: 'a red fox', size: { width: 64, height: 64 }, steps: 1, guidanceScale: 4, seed: 3 })).rejects.toThrow(/size 64x64 is not one this pipeline was built for \(128x128\)/);
    } finally {
      await p.release();
    }
  });
  it('a text length other than the transformer\'s is an error', async () => {
    await expect(loadPipeline(variant({ prompt: { maxSequenceLength: 16 } }), cpuExecutorFactory)).rejects.toThrow(/maxSequenceLength 16 but the transformer takes 32/);
  });
  it('bad manifest fields name the key', async () => {
    await expect(loadPipeline(variant({ family: 'sd3' }), cpuExecutorFactory)).rejects.toThrow(/'family' should be one of flux2, qwen_image/);
    await expect(loadPipeline(variant({ sizes: ['65x64'] }), cpuExecutorFactory)).rejects.toThrow(/'sizes\[0\]' should be multiples of 4/);
    await expect(loadPipeline(join(dir, 'missing.json'), cpuExecutorFactory)).rejects.toThrow(/missing.json: expected a pipeline manifest/);
  });
});
