/**
 * npx bench --e2e without a GPU: the flag's parsing and errors (bench/cli.ts, with the GPU probe and
 * the run injected), the stage accounting (bench/e2e.ts), the report (bench/e2e-report.ts), and the
 * whole flow over real pipeline artifacts (the bundled tiny Flux.2 and Qwen-Image, compiled without
 * nvcc) with a stand-in runtime: every module loaded with the seed through the GPU
 * executor, every description labelled synthetic, the requests run by the family's own pipeline
 * (its runs counted per module: Qwen-Image's true CFG doubles the encoder and transformer runs),
 * each module timed alone, everything released before the baseline, whose JSON becomes the
 * diffusers row. No time is asserted.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../bench/cli.ts';
import {
  type BaselineJson, type E2eOptions, type E2eResult, type E2eRuntime, type StageMs, type TimedModule,
  DEFAULT_PROMPT, NEGATIVE_PROMPT, baselineRow, diffusersLengths, e2eBench, medianStages, scheduleMu, stagesOf, stepSummary,
} from '../bench/e2e.ts';
import { DEFAULT_SETTINGS, resolveDropTokens, tokenizePrompt } from '../models/qwen_image/prompt.ts';
import { loadManifest } from '../runtime/pipeline/manifest.ts';
import { TextTokenizer } from '../runtime/pipeline/tokenizer.ts';
import { e2eChartSvg, e2eMarkdown } from '../bench/e2e-report.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { compilePipeline } from '../compiler/pipeline-artifact.ts';
import { empiricalMu } from '../models/flux2/scheduler.ts';
import { ROOT } from '../runtime/paths.ts';
import type { DenoiseLoop } from '../runtime/executor/types.ts';

const stages = (textEncode: number, denoise: number, vaeDecode: number, imageEncode: number): StageMs =>
  ({ textEncode, denoise, vaeDecode, imageEncode, total: textEncode + denoise + vaeDecode + imageEncode });

describe('stage accounting', () => {
  it('a request: the pipeline timings and the PNG encode, total their sum; bad times refused', () => {
    expect(stagesOf({ encodeMs: 10, denoiseMs: 200, decodeMs: 30 }, 5)).toEqual(stages(10, 200, 30, 5));
    expect(() => stagesOf({ encodeMs: Number.NaN, denoiseMs: 1, decodeMs: 1 }, 1)).toThrow('stage textEncode: expected a time in ms, found NaN');
    expect(() => stagesOf({ encodeMs: 1, denoiseMs: 1, decodeMs: -2 }, 1)).toThrow('stage vaeDecode');
  });

  it('requests: each stage its median; the total the median of the totals, not the sum of the medians', () => {
    const m = medianStages([stages(1, 100, 10, 1), stages(9, 50, 50, 1), stages(5, 60, 20, 1)]);
    expect([m.textEncode, m.denoise, m.vaeDecode, m.imageEncode]).toEqual([5, 60, 20, 1]);
    expect(m.total).toBe(110); // totals 112, 110, 86; the sum of the medians would be 86
  });

  it('the steps\' device times: the median and range over every timed step, each request\'s first step and sum', () => {
    expect(stepSummary([[240, 236, 235], [238, 237]])).toBe(
      'denoising steps inside the timed requests, device time (CUDA events on the loop\'s stream): median 237.0 ms a step (235.0-240.0; first steps 240.0 / 238.0), 711.0 / 475.0 ms a request',
    );
  });

  it('the diffusers row: its four stages summed; a missing stage is said, not a row', () => {
    const b: BaselineJson = {
      device: 'X', torch: '2.11', weights: 'synthetic (seed 1)', notes: [],
      stages: { text_encoder: { ms: 40, calls: 2, peak_gib: 16 }, denoise: { ms: 3000, calls: 16, peak_gib: 60 }, vae_decode: { ms: 90, calls: 1, peak_gib: 9 }, image_encode: { ms: 30, calls: 1 } },
    };
    const row = baselineRow('qwen_image', b);
    expect(row).toMatchObject({ family: 'qwen_image', stages: stages(40, 3000, 90, 30), memoryGiB: 60 });
    const { denoise: _, ...rest } = b.stages;
    expect(baselineRow('flux2', { ...b, stages: rest, notes: ['denoise failed: OutOfMemoryError'] })).toBe('flux2: the diffusers baseline lacks denoise (denoise failed: OutOfMemoryError)');
  });

  it('both sides get the same schedule: mu from the family\'s own scheduler', () => {
    expect(scheduleMu('flux2', 4096, 8)).toBe(empiricalMu(4096, 8));
    expect(scheduleMu('qwen_image', 4096, 8)).toBeCloseTo(0.5 + (0.4 / (8192 - 256)) * (4096 - 256), 12);
  });
});

function result(over: Partial<E2eResult> = {}): E2eResult {
  return {
    kind: 'e2e', date: 'D', device: 'Stand-in GPU', command: 'npx bench --e2e', steps: 8, seed: 42, weights: 'synthetic (seed 42)', tokens: 'test tokenizer ids',
    rows: [
      { family: 'flux2', system: 'compiled (fp8, CUDA graphs) [SYNTHETIC weights, seed 42]', stages: stages(50, 2600, 100, 40), memoryGiB: 52 },
      { family: 'flux2', system: 'diffusers (bf16, eager; stages one at a time)', stages: stages(100, 4600, 400, 60), memoryGiB: 61 },
    ],
    modules: { flux2: [{ role: 'textEncoder', msPerCall: 40, calls: 1, ms: 40, memoryGiB: 18 }, { role: 'transformer', msPerCall: 320, calls: 8, ms: 2560, memoryGiB: 32 }, { role: 'vaeDecoder', msPerCall: 60, calls: 1, ms: 60, memoryGiB: 2 }] },
    targets: { flux2: 2300 }, notes: ['a note'], ...over,
  };
}

describe('the e2e report', () => {
  it('one table per family: stages side by side with the ratio, the target verdict, device time per module, memory', () => {
    const md = e2eMarkdown(result());
    expect(md).toContain('End to end: compiled 2790 ms against the target of 2300 ms: not met.');
    expect(md).toContain('| denoise | 2600.0 | 4600.0 | 1.77x |');
    expect(md).toContain('| **total** | **2790.0** | **5160.0** | 1.85x |');
    expect(md).toContain('| GPU memory GiB | 52.0 | 61.0 | |');
    expect(md).toContain('| transformer | 320.00 | 8 | 2560.0 | 32.00 |');
    expect(md).toContain('| all | | | 2660.0 | 52.00 |');
    expect(md).toContain('Wall minus device time: 130 ms of the 2790 ms request');
    expect(md).toContain('- a note');
  });

  it('a module the request did not run: not timed, its memory still counted', () => {
    const r = result();
    r.modules.flux2 = [...r.modules.flux2!, { role: 'transformer', textLength: 64, msPerCall: 0, calls: 0, ms: 0, memoryGiB: 0.25 }];
    const md = e2eMarkdown(r);
    expect(md).toContain('| transformer, 64-token text | not run | 0 | — | 0.25 |');
    expect(md).toContain('| all | | | 2660.0 | 52.25 |');
  });

  it('the steps\' device time inside the requests, where the loop ran on the device: against the transformer alone, and the denoise stage\'s rest', () => {
    expect(e2eMarkdown(result())).not.toContain('Inside the requests');
    const r = result();
    r.rows[0] = { ...r.rows[0], stepsDeviceMs: 2590.5 };
    expect(e2eMarkdown(r)).toContain('Inside the requests the denoising steps ran 2590.5 ms on the device (CUDA events; the transformer alone x its calls: 2560.0): the denoise stage\'s 2600.0 ms hold 9.5 ms of host work and copies outside the steps.');
  });

  it('the board energy an image, where measured (the diffusers row: not measured)', () => {
    expect(e2eMarkdown(result())).not.toContain('GPU board energy');
    const r = result();
    r.rows[0] = { ...r.rows[0], joulesPerImage: 1571.6 };
    expect(e2eMarkdown(r)).toContain('| GPU board energy, J an image (NVML) | 1572 | not measured | |');
  });

  it('the target verdict: met at the target or under it, not met above', () => {
    const r = result();
    r.rows[0] = { ...r.rows[0], stages: stages(50, 2110, 100, 40) };
    expect(e2eMarkdown(r)).toContain('compiled 2300 ms against the target of 2300 ms: met.');
    r.rows[0] = { ...r.rows[0], stages: stages(50, 2111, 100, 40) };
    expect(e2eMarkdown(r)).toContain('compiled 2301 ms against the target of 2300 ms: not met.');
  });

  it('the chart: one segment per stage per row, widths in proportion', () => {
    const svg = e2eChartSvg(result());
    expect(svg.match(/<rect x="[\d.]+" y="\d+" width="[\d.]+" height="20"/g)).toHaveLength(8);
    const widths = [...svg.matchAll(/width="([\d.]+)" height="20"/g)].map((m) => Number(m[1]));
    expect(widths[1] / widths[5]).toBeCloseTo(2600 / 4600, 2);
  });
});

describe('npx bench --e2e (flags)', () => {
  afterEach(() => vi.restoreAllMocks());
  const errors: string[] = [];
  const run = async (args: string[], hooks = {}) => {
    errors.length = 0;
    vi.spyOn(console, 'error').mockImplementation((s: string) => void errors.push(s));
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    return main(args, hooks);
  };

  it('refuses what the e2e bench cannot do, each with one line and exit 1', async () => {
    const gpu = { gpuPresent: async () => true, e2e: async () => { throw new Error('must not run'); } };
    expect(await run(['--e2e', '--cpu'], gpu)).toBe(1);
    expect(errors.at(-1)).toMatch(/--e2e: expected a GPU run .* found --cpu/);
    expect(await run(['--e2e', '--compile'], gpu)).toBe(1);
    expect(await run(['--e2e', '--models', 'flux2_dev'], gpu)).toBe(1);
    expect(errors.at(-1)).toMatch(/--models: expected pipeline families for --e2e: flux2, qwen_image, found 'flux2_dev'/);
    expect(await run(['--e2e', '--artifact', 'flux2_dev=x'], gpu)).toBe(1);
    expect(await run(['--e2e', '--seed', '-1'], gpu)).toBe(1);
    expect(await run(['--e2e', '--size', '1000x1004'], gpu)).toBe(1);
    expect(errors.at(-1)).toMatch(/--size: expected width and height that are positive multiples of 16 .* found 1000x1004/);
    expect(await run(['--e2e', '--skip-pending'], gpu)).toBe(1); // removed: every launch has a kernel; a stale artifact is refused (bench-e2e-pending.test.ts)
    expect(errors.at(-1)).toMatch(/^error: command line: .*Unknown option '--skip-pending'/);
    expect(await run(['--e2e'], { gpuPresent: async () => false })).toBe(1);
    expect(errors.at(-1)).toMatch(/--e2e: expected a GPU .* found no CUDA driver here/);
  });

  it('passes the options on and writes json, markdown and chart; --report rewrites them', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-e2e-'));
    let seen: E2eOptions | undefined;
    const e2e = async (o: E2eOptions) => { seen = o; const { kind: _k, date: _d, command: _c, ...r } = result(); return r; };
    expect(await run(['--e2e', '--models', 'flux2', '--steps', '4', '--seed', '7', '--artifact', 'flux2=/a', '--no-baseline', '--out', out], { gpuPresent: async () => true, e2e })).toBe(0);
    expect(seen).toEqual({ families: ['flux2'], seed: 7, steps: 4, iters: 3, artifacts: { flux2: '/a' }, baseline: false, baselineScript: undefined, hostLoop: false });
    expect(await run(['--e2e', '--models', 'flux2', '--host-loop', '--no-baseline', '--out', mkdtempSync(join(tmpdir(), 'bench-e2e-'))], { gpuPresent: async () => true, e2e })).toBe(0);
    expect(seen?.hostLoop).toBe(true);
    expect(await run(['--e2e', '--size', '1216x832', '--no-baseline', '--out', mkdtempSync(join(tmpdir(), 'bench-e2e-'))], { gpuPresent: async () => true, e2e })).toBe(0);
    expect(seen?.size).toBe('1216x832');
    const r = JSON.parse(readFileSync(join(out, 'bench-e2e.json'), 'utf8')) as E2eResult;
    expect(r.kind).toBe('e2e');
    expect(r.command).toBe(`npx bench --e2e --models flux2 --steps 4 --seed 7 --artifact flux2=/a --no-baseline --out ${out}`);
    expect(readFileSync(join(out, 'bench-e2e.md'), 'utf8')).toBe(e2eMarkdown(r));
    expect(existsSync(join(out, 'bench-e2e.svg'))).toBe(true);
    writeFileSync(join(out, 'bench-e2e.md'), 'stale');
    expect(await run(['--report', join(out, 'bench-e2e.json')])).toBe(0);
    expect(readFileSync(join(out, 'bench-e2e.md'), 'utf8')).toContain('## Flux.2 [dev]');
  });
});

describe('e2eBench over tiny pipeline artifacts (stand-in runtime)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'e2e-art-'));
  const artifacts = { flux2: join(dir, 'flux2'), qwen_image: join(dir, 'qwen') };
  beforeAll(async () => {
    await compilePipeline({ pipeline: join(ROOT, 'models', 'flux2', 'tiny.pipeline.json'), out: artifacts.flux2, build: false });
    await compilePipeline({ pipeline: join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'), out: artifacts.qwen_image, build: false });
  }, 120_000);

  it('loads every module with the seed, runs the requests, times each module alone, releases, then the baseline', async () => {
    const events: string[] = [];
    const roles = new Map<unknown, string>();
    const runtime: E2eRuntime = {
      loadModel: (d, options) => {
        const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { io: { outputs: { name: string; shape: number[] }[] } };
        const role = d.split('/').at(-1)!;
        // weightsFrom / arenaFrom (the batch-2 transformer over the batch-1 one's weights, in its activation memory): the lender as the runtime loaded it, not the bench's counting wrapper.
        events.push(`load ${role} ${JSON.stringify({ ...options, ...(options?.weightsFrom ? { weightsFrom: roles.get(options.weightsFrom) } : {}), ...(options?.arenaFrom ? { arenaFrom: roles.get(options.arenaFrom) } : {}) })}`);
        const module: TimedModule = {
          device: { name: 'Stand-in GPU' },
          memory: { arenaBytes: 1, weightBytes: 1, workspaceBytes: 1, deviceUsedBytes: 2 ** 30 },
          run: () => Object.fromEntries(m.io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)])),
          // A step memo where the manifest has a plan (the runtime's rule with the default budget): the report says the timed requests restored it.
          ...({ stepMemo: !!(m as { memo?: unknown }).memo } as object),
          // Replicas (Qwen-Image's transformer, for its two CFG passes at once): runMany.
          ...(options?.replicas ? { runMany: (list: unknown[]) => list.map(() => Object.fromEntries(m.io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)]))) } : {}),
          // Launch now, finish later (runtime/gpu/model.ts start): what the GPU executor calls when a module has it.
          start: (list: unknown[]) => () => list.map(() => Object.fromEntries(m.io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)]))),
          time: (n) => { events.push(`time ${role} ${n}`); return { medianMs: 2 }; },
          close: () => events.push(`close ${role}`),
        };
        roles.set(module, role);
        return module;
      },
    };
    const baseline = (family: string, o: E2eOptions, lengths: { encoder: number[]; text: number[] }): BaselineJson => {
      events.push(`baseline ${family} steps ${o.steps} prompts ${lengths.encoder.length}`);
      return { device: 'X', torch: 't', weights: 'synthetic (seed 5)', notes: ['stages one at a time'], stages: { text_encoder: { ms: 1, calls: 1 }, denoise: { ms: 2, calls: 2 }, vae_decode: { ms: 3, calls: 1 }, image_encode: { ms: 4, calls: 1 } } };
    };
    const logs: string[] = [];
    const r = await e2eBench({ families: ['flux2', 'qwen_image'], seed: 5, steps: 2, iters: 2, artifacts, baseline: true }, { runtime, baseline }, (s) => logs.push(s));

    const opts = JSON.stringify({ syntheticWeights: 5, bf16Bits: true });
    // Qwen-Image encodes its two prompts at once (two replicas of the text encoder) and runs its two
    // CFG predictions as one run of the transformer compiled at batch 2, over the batch-1 one's weights.
    const two = JSON.stringify({ syntheticWeights: 5, bf16Bits: true, replicas: 2 });
    const cfg = JSON.stringify({ syntheticWeights: 5, bf16Bits: true, weightsFrom: 'transformer', arenaFrom: 'transformer' });
    // The batch-1 transformer allocates the activation memory all four transformer modules run in: the largest arena of theirs.
    const arenaOf = (m: string) => (JSON.parse(readFileSync(join(artifacts.qwen_image, m, 'manifest.json'), 'utf8')) as { memory: { arenaBytes: number } }).memory.arenaBytes;
    const lender = JSON.stringify({ syntheticWeights: 5, bf16Bits: true, arenaBytes: Math.max(...['transformer', 'transformer_cfg', 'transformer_t16', 'transformer_t16_cfg'].map(arenaOf)) });
    const forFamily = (f: string) => f === 'flux2' ? [
      `load text_encoder ${opts}`, `load transformer ${opts}`, `load vae_decoder ${opts}`,
      'time text_encoder 3', 'time transformer 3', 'time vae_decoder 3',
      'close text_encoder', 'close transformer', 'close vae_decoder', 'baseline flux2 steps 2 prompts 1',
    ] : [
      // and the transformer for 16-token texts (the tiny description's textLengths), both batch sizes, over its weights too
      `load text_encoder ${two}`, `load transformer ${lender}`, `load vae_decoder ${opts}`, `load transformer_cfg ${cfg}`, `load transformer_t16 ${cfg}`, `load transformer_t16_cfg ${cfg}`,
      // the batch-1 transformers never ran, nor those for 16 tokens (the bench prompt needs 24): not timed (no captured graph)
      'time text_encoder 3', 'time vae_decoder 3', 'time transformer_cfg 3',
      'close text_encoder', 'close transformer_t16_cfg', 'close transformer_t16', 'close transformer_cfg', 'close transformer', 'close vae_decoder', 'baseline qwen_image steps 2 prompts 2',
    ];
    expect(events).toEqual([...forFamily('flux2'), ...forFamily('qwen_image')]);
    // Every module run once after the load, as the server warms up (the Qwen-Image transformer's batch-2 and text-length modules).
    expect(logs.filter((l) => / every module warmed in /.test(l)).map((l) => l.split(':')[0])).toEqual(['flux2', 'qwen_image']);
    expect(logs.find((l) => l.startsWith('flux2: loaded'))).toMatch(/text_encoder \[SYNTHETIC weights, seed 5\] \| .*transformer \[SYNTHETIC weights, seed 5\] \| .*vae_decoder \[SYNTHETIC weights, seed 5\] in /);
    expect(r.device).toBe('Stand-in GPU');
    expect(r.rows.map((x) => [x.family, x.system])).toEqual([
      ['flux2', 'compiled (fp8, CUDA graphs) [SYNTHETIC weights, seed 5]'],
      ['flux2', 'diffusers (bf16, eager; stages one at a time)'],
      ['qwen_image', 'compiled (fp8, CUDA graphs) [SYNTHETIC weights, seed 5]'],
      ['qwen_image', 'diffusers (bf16, eager; stages one at a time)'],
    ]);
    expect(r.rows[0].memoryGiB).toBe(3);
    const compiled = r.rows[0].stages;
    for (const k of ['textEncode', 'denoise', 'vaeDecode', 'imageEncode'] as const) expect(compiled[k]).toBeGreaterThan(0);
    expect(compiled.total).toBeGreaterThan(compiled.denoise); // the median request's total (medianStages is tested above)
    expect(r.rows[1].stages).toEqual(stages(1, 2, 3, 4));
    // Runs counted per request: Flux.2 one encode and one pass per step; Qwen-Image's true CFG two of each; one VAE decode of the whole latent.
    expect(r.modules.flux2!.map((m) => [m.role, m.calls, m.ms])).toEqual([['textEncoder', 1, 2], ['transformer', 2, 4], ['vaeDecoder', 1, 2]]);
    expect(r.modules.qwen_image!.map((m) => [m.role, m.textLength, m.calls])).toEqual([['textEncoder', undefined, 2], ['transformer', undefined, 0], ['vaeDecoder', undefined, 1], ['transformerCfg', undefined, 2], ['transformer', 16, 0], ['transformerCfg', 16, 0]]); // one batch-2 run a step
    expect(r.targets).toEqual({ flux2: 2300, qwen_image: 1500 });
    expect(r.notes).toContain('flux2 baseline: stages one at a time');
    expect(r.notes.find((n) => n.startsWith('qwen_image: the 3 requests'))).toMatch(/gave identical PNG bytes/); // a deterministic stand-in
    // The tiny transformers' manifests carry a step memo plan (compiler/memo.ts): the report says the timed requests restored it.
    expect(r.notes.find((n) => n.startsWith('qwen_image: step memo on'))).toMatch(/the timed requests restored them/);
  }, 120_000);

  it('a module with a device loop gets the whole loop, its runs counted as steps x input sets / batch; --host-loop hides it', async () => {
    const loops: number[] = [];
    const runtime: E2eRuntime = {
      loadModel: (d, options) => {
        const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { io: { outputs: { name: string; shape: number[] }[] } };
        const outputs = () => Object.fromEntries(m.io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)]));
        return {
          memory: { arenaBytes: 1, weightBytes: 1, workspaceBytes: 1, deviceUsedBytes: 1 },
          run: outputs,
          ...(options?.replicas ? { runMany: (list: unknown[]) => list.map(outputs) } : {}),
          denoise: (l: DenoiseLoop) => { loops.push(l.inputs.length); return new Float32Array(l.latents.length); },
          time: () => ({ medianMs: 1 }),
          close: () => undefined,
        };
      },
    };
    for (const hostLoop of [false, true]) {
      loops.length = 0;
      const r = await e2eBench({ families: ['qwen_image'], seed: 5, steps: 2, iters: 1, artifacts, baseline: false, hostLoop }, { runtime }, () => undefined);
      expect(loops).toEqual(hostLoop ? [] : [2, 2]); // the warm-up and the timed request, two CFG sets each
      // Both CFG predictions of a step are one run of the batch-2 module (the tiny description's batchedCfg), on the device or the host loop alike.
      expect(r.modules.qwen_image!.filter((x) => x.role.startsWith('transformer')).map((x) => [x.role, x.textLength, x.calls])).toEqual([['transformer', undefined, 0], ['transformerCfg', undefined, 2], ['transformer', 16, 0], ['transformerCfg', 16, 0]]);
      expect(r.rows[0].note).toContain(`denoising loop on the ${hostLoop ? 'host' : 'device'}`);
    }
  }, 120_000);

  it('the board\'s energy over the timed requests, a request, from NVML\'s counter on the modules\' board (none without a bus id)', async () => {
    const buses: string[] = [];
    let reads = 0;
    const runtime: E2eRuntime = {
      loadModel: (d) => {
        const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { io: { outputs: { name: string; shape: number[] }[] } };
        const outputs = () => Object.fromEntries(m.io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)]));
        return { device: { name: 'Stand-in GPU', pciBusId: '00000000:19:00.0' }, memory: { arenaBytes: 1, weightBytes: 1, workspaceBytes: 1, deviceUsedBytes: 1 }, run: outputs, time: () => ({ medianMs: 1 }), close: () => undefined };
      },
    };
    // The counter's readings: opened before the timed requests, closed after them (300 J over 3 requests).
    const nvml = (bus: string) => { buses.push(bus); return { energyMj: () => 5_000_000 + 300_000 * reads++, smClockMHz: () => 1400 }; };
    const logs: string[] = [];
    const r = await e2eBench({ families: ['flux2'], seed: 5, steps: 2, iters: 3, artifacts, baseline: false }, { runtime, nvml }, (line) => logs.push(line));
    expect(buses).toEqual(['00000000:19:00.0']);
    expect(reads).toBe(2);
    expect(r.rows[0].joulesPerImage).toBe(100);
    expect(logs.find((l) => l.startsWith('flux2: compiled end to end'))).toMatch(/, 100 J an image \(board, \d+ W mean\)$/);
    // No NVML (or no bus id): not measured, and said so in the report.
    const none = await e2eBench({ families: ['flux2'], seed: 5, steps: 2, iters: 1, artifacts, baseline: false }, { runtime, nvml: () => undefined }, () => undefined);
    expect(none.rows[0].joulesPerImage).toBeUndefined();
  }, 120_000);

  it('the baseline runs each Qwen-Image prompt at its own unpadded length, as diffusers; Flux.2 at 512 as both', () => {
    const m = loadManifest(artifacts.qwen_image);
    const tok = TextTokenizer.load(m.tokenizer);
    const drop = resolveDropTokens(tok, { ...DEFAULT_SETTINGS, template: m.prompt.template as string, dropTokens: 'prefix' });
    const l = diffusersLengths(m, 'qwen_image', [DEFAULT_PROMPT, NEGATIVE_PROMPT]);
    expect(l.encoder).toEqual([DEFAULT_PROMPT, NEGATIVE_PROMPT].map((p) => tokenizePrompt(tok, p, m.prompt.template as string, 1058).length));
    expect(l.text).toEqual(l.encoder.map((n) => n - drop));
    expect(l.encoder[0]).toBeGreaterThan(l.encoder[1]); // the negative prompt " " is shorter
    expect(diffusersLengths(loadManifest(artifacts.flux2), 'flux2', [DEFAULT_PROMPT])).toEqual({ encoder: [512], text: [512] });
  });

  it('a baseline that cannot run is a note, not a row', async () => {
    const runtime: E2eRuntime = {
      loadModel: (d) => {
        const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { io: { outputs: { name: string; shape: number[] }[] } };
        return { memory: { arenaBytes: 0, weightBytes: 0, workspaceBytes: 0, deviceUsedBytes: 0 }, run: () => Object.fromEntries(m.io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)])), time: () => ({ medianMs: 1 }), close: () => undefined };
      },
    };
    const r = await e2eBench({ families: ['flux2'], seed: 1, steps: 1, iters: 1, artifacts, baseline: true }, { runtime, baseline: () => 'PyTorch baseline not run: diffusers does not import here' }, () => undefined);
    expect(r.rows.map((x) => x.system)).toEqual(['compiled (fp8, CUDA graphs) [SYNTHETIC weights, seed 1]']);
    expect(r.notes).toContain('PyTorch baseline not run: diffusers does not import here');
  }, 60_000);

  it('--size: the requests, the modules timed and the baseline at that size of a multi-size artifact; a size it does not list is refused, naming its sizes', async () => {
    const multi = join(dir, 'qwen-sizes');
    await compilePipeline({ pipeline: join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'), out: multi, sizes: ['64x64', '80x48'], build: false });
    const timed: string[] = [], latents: number[][] = [];
    const runtime: E2eRuntime = {
      loadModel: (d) => {
        const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { io: { outputs: { name: string; shape: number[] }[] } };
        const outputs = () => Object.fromEntries(m.io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)]));
        return {
          memory: { arenaBytes: 1, weightBytes: 1, workspaceBytes: 1, deviceUsedBytes: 1 }, run: outputs,
          denoise: (l: DenoiseLoop) => { latents.push([...l.latentsShape]); return new Float32Array(l.latents.length); },
          time: () => { timed.push(d.split('/').at(-1)!); return { medianMs: 1 }; }, close: () => undefined,
        };
      },
    };
    let asked: E2eOptions | undefined;
    const baseline = (_f: string, o: E2eOptions): BaselineJson => { asked = o; return { device: 'X', torch: 't', weights: 'w', notes: [], stages: { text_encoder: { ms: 1, calls: 1 }, denoise: { ms: 1, calls: 1 }, vae_decode: { ms: 1, calls: 1 }, image_encode: { ms: 1, calls: 1 } } }; };
    const r = await e2eBench({ families: ['qwen_image'], seed: 5, steps: 2, iters: 1, artifacts: { qwen_image: multi }, baseline: true, size: '80x48' }, { runtime, baseline }, () => undefined);
    // The tiny VAE's factor 2: 80x48 is 40 x 24 latents, 20 x 12 tokens of 64 channels (the warm-up and the timed request).
    expect(latents).toEqual([[1, 240, 64], [1, 240, 64]]);
    expect(timed).toEqual(['text_encoder', 'vae_decoder_80x48', 'transformer_80x48_cfg']);
    expect(r.modules.qwen_image!.map((x) => [x.role, x.textLength])).toEqual([['textEncoder', undefined], ['transformer', undefined], ['vaeDecoder', undefined], ['transformerCfg', undefined], ['transformer', 16], ['transformerCfg', 16]]);
    expect(r.rows[0].note).toContain('80x48, 2 steps');
    expect(asked?.size).toBe('80x48');
    // No --artifact: the default artifact where it (or, not compiled yet, the description: full size, 1024x1024) lists the size, else one of that size beside it, compiled for it alone.
    const root = mkdtempSync(join(tmpdir(), 'e2e-root-')), compiled: string[] = [], logs: string[] = [];
    const compile = async (description: string, out: string, sizes?: string[]) => {
      expect(description).toBe(join(ROOT, 'models', 'qwen_image', 'full.pipeline.json'));
      compiled.push(`${out.slice(root.length)} ${sizes}`);
      await compilePipeline({ pipeline: join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'), out, sizes: sizes ?? ['64x64', '80x48'], build: false });
    };
    const bench = (size: string) => e2eBench({ families: ['qwen_image'], seed: 5, steps: 1, iters: 1, artifacts: {}, baseline: false, size }, { runtime, compile, artifactRoot: root }, (l) => logs.push(l));
    await bench('80x48');
    await compile(join(ROOT, 'models', 'qwen_image', 'full.pipeline.json'), join(root, 'artifacts', 'qwen-image-h100-fp8')); // the default one, as the description would give it
    await bench('80x48');
    await bench('96x64');
    expect(compiled).toEqual(['/artifacts/qwen-image-h100-fp8-80x48 80x48', '/artifacts/qwen-image-h100-fp8 undefined', '/artifacts/qwen-image-h100-fp8-96x64 96x64']);
    expect(logs.filter((l) => l.startsWith('qwen_image: loaded')).map((l) => /\/artifacts\/([^/]+)\/text_encoder/.exec(l)?.[1])).toEqual(['qwen-image-h100-fp8-80x48', 'qwen-image-h100-fp8', 'qwen-image-h100-fp8-96x64']);
    await expect(e2eBench({ families: ['qwen_image'], seed: 5, steps: 2, iters: 1, artifacts: { qwen_image: multi }, baseline: false, size: '96x96' }, { runtime }, () => undefined))
      .rejects.toThrow(/qwen-sizes: compiled for 64x64, 80x48, not 96x96 \(compile one with `npx compile models\/qwen_image\/full.pipeline.json --size 96x96`, or leave out --artifact\)/);
  }, 120_000);
});
