/**
 * npx bench: the compiled model against its baselines, on the same machine, in the same run.
 *
 *   npx bench [--models flux2_dev,qwen_image] [--size WxH] [--steps 8] [--seed 42] [--iters 20]
 *             [--artifact MODEL=DIR]... [--compile] [--no-baseline] [--baseline-script FILE]
 *             [--cpu] [--out bench/results] [--json]
 *   npx bench --e2e [--models flux2,qwen_image] [--size WxH] [--steps 8] [--seed 42] [--iters 3] [--host-loop]
 *             [--artifact FAMILY=DIR]... [--no-baseline] [--baseline-script FILE] [--out DIR] [--json]
 *   npx bench --report FILE.json      rewrites FILE's markdown and chart (PNG needs sharp)
 *
 * With a CUDA driver (runtime/gpu loads libcuda): bench/gpu-bench.ts, full-size transformers with
 * synthetic weights against diffusers. Without one (or --cpu): bench/cpu-bench.ts, the tiny
 * transformers compiled (reference path) against onnxruntime-node. Writes bench-<gpu|cpu>.{json,md,
 * svg,png} under --out and prints the markdown (or, with --json, the result). Exits as
 * compiler/cli/command.ts says (1 with one line for bad flags, 70 for a bug).
 * --e2e (GPU only): whole requests through the pipeline artifacts, per stage, against diffusers'
 * stages (bench/e2e.ts); writes bench-e2e.{json,md,svg,png}. --host-loop runs the denoising loop on
 * the host, one round trip per step, instead of on the device (runtime/gpu/denoise.ts): the comparison.
 * --size WxH: the per-step bench's transformers re-specialised to that size; --e2e's requests at that
 * size (an artifact that lists it: the default one, else one compiled for it beside it) and diffusers' too.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseCommandLine, runCommand } from '../compiler/cli/command.ts';
import { parseSize } from '../compiler/compile.ts';
import { fail } from '../compiler/errors.ts';
import { ROOT } from '../compiler/paths.ts';
import { E2E_FAMILIES, type E2eFamily, type E2eOptions, type E2eResult } from './e2e.ts';
import { type BenchResult, markdown, writeReport } from './report.ts';

/** Whether the CUDA driver library loads here (koffi, loaded lazily; nothing is kept open). */
async function gpuPresent(): Promise<boolean> {
  try {
    const { loadLibrary } = await import('../runtime/gpu/cuda.ts');
    return !('error' in loadLibrary(['libcuda.so.1']));
  } catch {
    return false;
  }
}

const USAGE = 'npx bench [--e2e [--host-loop]] [--models M,...] [--size WxH] [--steps N] [--seed N] [--iters N] [--artifact MODEL=DIR]... [--compile] [--no-baseline] [--baseline-script FILE] [--cpu] [--out DIR] [--json] | --report FILE.json';

/** The test seam of --e2e: whether a GPU is here, and what runs the requests (default: bench/e2e.ts on runtime/gpu). */
export interface BenchHooks {
  gpuPresent?: () => Promise<boolean>;
  e2e?: (o: E2eOptions, log: (s: string) => void) => Promise<Omit<E2eResult, 'kind' | 'date' | 'command'>>;
}

export function main(argv: string[], hooks: BenchHooks = {}): Promise<number> {
  return runCommand('bench', async (out) => {
    const { values: v } = parseCommandLine({
      args: argv, strict: true, allowPositionals: false,
      options: {
        models: { type: 'string' }, steps: { type: 'string', default: '8' }, seed: { type: 'string', default: '42' }, iters: { type: 'string' }, e2e: { type: 'boolean' }, 'host-loop': { type: 'boolean' },
        artifact: { type: 'string', multiple: true }, compile: { type: 'boolean' }, 'no-baseline': { type: 'boolean' }, 'baseline-script': { type: 'string' },
        cpu: { type: 'boolean' }, out: { type: 'string' }, json: { type: 'boolean' }, report: { type: 'string' }, size: { type: 'string' },
      },
    }, USAGE);
    out.json = !!v.json;
    const int = (name: string, s: string) => (/^\d+$/.test(s) && Number(s) > 0 ? Number(s) : fail(`--${name}`, 'a positive integer', `'${s}'`));
    if (v.report) {
      const r = JSON.parse(readFileSync(v.report, 'utf8')) as BenchResult | E2eResult;
      if (r.kind === 'e2e') {
        const { e2eMarkdown, writeE2eReport } = await import('./e2e-report.ts');
        const files = await writeE2eReport(r, join(dirname(v.report), basename(v.report, '.json')));
        console.log(`${e2eMarkdown(r)}\nwritten: ${files.join(', ')}`);
        return 0;
      }
      const files = await writeReport(r, join(dirname(v.report), basename(v.report, '.json')));
      console.log(`${markdown(r)}\nwritten: ${files.join(', ')}`);
      return 0;
    }
    const steps = int('steps', v.steps!), seed = Number(v.seed), iters = int('iters', v.iters ?? (v.e2e ? '3' : '20'));
    if (!/^\d+$/.test(v.seed!) || !Number.isSafeInteger(seed) || seed >= 2 ** 32) fail('--seed', 'a non-negative integer below 2^32', `'${v.seed}'`);
    const artifacts = Object.fromEntries((v.artifact ?? []).map((a) => {
      const [model, dir] = a.split('=');
      if (!model || !dir) fail('--artifact', 'MODEL=DIR', `'${a}'`);
      return [model, dir];
    }));
    const log = (s: string) => console.error(s);
    if (v.size !== undefined) {
      if (v.cpu) fail('--size', 'a GPU bench (--cpu runs the tiny transformers at their own size)', '--cpu');
      parseSize(v.size);
    }
    if (v.e2e) {
      if (v.cpu) fail('--e2e', 'a GPU run (whole requests through the compiled pipeline; there is no CPU e2e bench)', '--cpu');
      if (v.compile) fail('--e2e', 'diffusers eager as the baseline (--compile is for the per-step bench)', '--compile');
      const families = (v.models ?? 'flux2,qwen_image').split(',');
      for (const f of families) if (!(E2E_FAMILIES as readonly string[]).includes(f)) fail('--models', `pipeline families for --e2e: ${E2E_FAMILIES.join(', ')}`, `'${f}'`);
      for (const k of Object.keys(artifacts)) if (!(E2E_FAMILIES as readonly string[]).includes(k)) fail('--artifact', `FAMILY=DIR with FAMILY one of ${E2E_FAMILIES.join(', ')}`, `'${k}'`);
      if (!(await (hooks.gpuPresent ?? gpuPresent)())) fail('--e2e', 'a GPU (the CUDA driver, libcuda.so.1, loads)', 'no CUDA driver here');
      const o: E2eOptions = { families: families as E2eFamily[], seed, steps, iters, artifacts, baseline: !v['no-baseline'], baselineScript: v['baseline-script'], hostLoop: !!v['host-loop'], ...(v.size ? { size: v.size } : {}) };
      const run = hooks.e2e ?? (async (opts: E2eOptions, l: (s: string) => void) => {
        const [{ e2eBench }, { loadModel }] = await Promise.all([import('./e2e.ts'), import('../runtime/gpu/model.ts')]);
        return e2eBench(opts, { runtime: { loadModel: (dir, lo) => loadModel(dir, { ...lo, log: (line) => l(`  ${line}`) }) } }, l);
      });
      const r: E2eResult = { kind: 'e2e', date: new Date().toISOString(), command: `npx bench ${argv.join(' ')}`.trim(), ...(await run(o, log)) };
      const outDir = v.out ?? join(ROOT, 'bench', 'results');
      mkdirSync(outDir, { recursive: true });
      const { e2eMarkdown, writeE2eReport } = await import('./e2e-report.ts');
      const files = await writeE2eReport(r, join(outDir, 'bench-e2e'));
      if (v.json) console.log(JSON.stringify(r));
      else console.log(`${e2eMarkdown(r)}\nwritten: ${files.join(', ')}`);
      return 0;
    }
    const gpu = !v.cpu && (await gpuPresent());
    const date = new Date().toISOString();
    const command = `npx bench ${argv.join(' ')}`.trim();
    let result: BenchResult;
    if (gpu) {
      const { FP8_CEILING_TFLOPS, gpuBench } = await import('./gpu-bench.ts'); // loads koffi only here
      const models = (v.models ?? 'flux2_dev,qwen_image').split(',');
      for (const m of models) if (!['flux2_dev', 'qwen_image'].includes(m)) fail('--models', 'flux2_dev and/or qwen_image', `'${m}'`);
      const r = await gpuBench({ models, seed, iters, artifacts, torchCompile: !!v.compile, baseline: !v['no-baseline'], baselineScript: v['baseline-script'], size: v.size }, log);
      result = { kind: 'gpu', date, device: r.device, command, steps, seed, weights: `synthetic (seed ${seed})`, rows: r.rows, stages: r.stages, notes: r.notes, ceilingTflops: FP8_CEILING_TFLOPS };
    } else {
      if (v.size !== undefined) fail('--size', 'a GPU (the full-size transformers at that size; the CPU bench runs the tiny ones at theirs)', 'no CUDA driver here');
      const models = (v.models ?? 'flux2,qwen_image').split(',');
      for (const m of models) if (!['flux2', 'qwen_image'].includes(m)) fail('--models', 'flux2 and/or qwen_image (the bundled tiny transformers; no GPU here)', `'${m}'`);
      log('no GPU here (no CUDA driver): the tiny transformers, compiled (reference path) against onnxruntime-node');
      const { cpuBench } = await import('./cpu-bench.ts');
      const rows = await cpuBench(models, iters, log);
      const os = await import('node:os');
      result = { kind: 'cpu', date, device: `${os.cpus()[0]?.model ?? 'CPU'} x${os.cpus().length}`, command, steps, seed, weights: 'the fixtures\' own', rows, notes: ['CPU only: no GPU figures; the compiled graph runs on the reference executor, written for exactness, not speed.'] };
    }
    const outDir = v.out ?? join(ROOT, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const files = await writeReport(result, join(outDir, `bench-${result.kind}`));
    if (v.json) console.log(JSON.stringify(result));
    else console.log(`${markdown(result)}\nwritten: ${files.join(', ')}`);
    return 0;
  });
}

const isMain = process.argv[1] && /bench[/\\]cli\.ts$/.test(process.argv[1]);
// A failed run exits at once: what a half-loaded pipeline leaves behind must not keep Node alive (seen on the GPU host).
if (isMain) { const code = await main(process.argv.slice(2)); if (code) process.exit(code); }
