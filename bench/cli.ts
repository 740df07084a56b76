/**
 * npx bench: the compiled model against its baselines, on the same machine, in the same run.
 *
 *   npx bench [--models flux2_dev,qwen_image] [--steps 8] [--seed 42] [--iters 20]
 *             [--artifact MODEL=DIR]... [--compile] [--no-baseline] [--baseline-script FILE]
 *             [--cpu] [--out bench/results] [--json]
 *   npx bench --report FILE.json      rewrites FILE's markdown and chart (PNG needs sharp)
 *
 * With a CUDA driver (runtime/gpu loads libcuda): bench/gpu-bench.ts, full-size transformers with
 * synthetic weights against diffusers. Without one (or --cpu): bench/cpu-bench.ts, the tiny
 * transformers compiled (reference path) against onnxruntime-node. Writes bench-<gpu|cpu>.{json,md,
 * svg,png} under --out and prints the markdown (or, with --json, the result). Exits as
 * compiler/cli/command.ts says (1 with one line for bad flags, 70 for a bug).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parseCommandLine, runCommand } from '../compiler/cli/command.ts';
import { fail } from '../compiler/errors.ts';
import { ROOT } from '../compiler/paths.ts';
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

const USAGE = 'npx bench [--models M,...] [--steps N] [--seed N] [--iters N] [--artifact MODEL=DIR]... [--compile] [--no-baseline] [--baseline-script FILE] [--cpu] [--out DIR] [--json] | --report FILE.json';

export function main(argv: string[]): Promise<number> {
  return runCommand('bench', async (out) => {
    const { values: v } = parseCommandLine({
      args: argv, strict: true, allowPositionals: false,
      options: {
        models: { type: 'string' }, steps: { type: 'string', default: '8' }, seed: { type: 'string', default: '42' }, iters: { type: 'string', default: '20' },
        artifact: { type: 'string', multiple: true }, compile: { type: 'boolean' }, 'no-baseline': { type: 'boolean' }, 'baseline-script': { type: 'string' },
        cpu: { type: 'boolean' }, out: { type: 'string' }, json: { type: 'boolean' }, report: { type: 'string' },
      },
    }, USAGE);
    out.json = !!v.json;
    const int = (name: string, s: string) => (/^\d+$/.test(s) && Number(s) > 0 ? Number(s) : fail(`--${name}`, 'a positive integer', `'${s}'`));
    if (v.report) {
      const r = JSON.parse(readFileSync(v.report, 'utf8')) as BenchResult;
      const files = await writeReport(r, join(dirname(v.report), basename(v.report, '.json')));
      console.log(`${markdown(r)}\nwritten: ${files.join(', ')}`);
      return 0;
    }
    const steps = int('steps', v.steps!), seed = Number(v.seed), iters = int('iters', v.iters!);
    if (!Number.isInteger(seed) || seed < 0) fail('--seed', 'a non-negative integer', `'${v.seed}'`);
    const artifacts = Object.fromEntries((v.artifact ?? []).map((a) => {
      const [model, dir] = a.split('=');
      if (!model || !dir) fail('--artifact', 'MODEL=DIR', `'${a}'`);
      return [model, dir];
    }));
    const log = (s: string) => console.error(s);
    const gpu = !v.cpu && (await gpuPresent());
    const date = new Date().toISOString();
    const command = `npx bench ${argv.join(' ')}`.trim();
    let result: BenchResult;
    if (gpu) {
      const { FP8_CEILING_TFLOPS, gpuBench } = await import('./gpu-bench.ts'); // loads koffi only here
      const models = (v.models ?? 'flux2_dev,qwen_image').split(',');
      for (const m of models) if (!['flux2_dev', 'qwen_image'].includes(m)) fail('--models', 'flux2_dev and/or qwen_image', `'${m}'`);
      const r = await gpuBench({ models, seed, iters, artifacts, torchCompile: !!v.compile, baseline: !v['no-baseline'], baselineScript: v['baseline-script'] }, log);
      result = { kind: 'gpu', date, device: r.device, command, steps, seed, weights: `synthetic (seed ${seed})`, rows: r.rows, stages: r.stages, notes: r.notes, ceilingTflops: FP8_CEILING_TFLOPS };
    } else {
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
if (isMain) process.exitCode = await main(process.argv.slice(2));
