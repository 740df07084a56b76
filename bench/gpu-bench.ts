/**
 * `npx bench` on a GPU: one denoising step of Flux.2 [dev] and Qwen-Image at 1024x1024 (`--size WxH`:
 * another image size), the compiled FP8 transformer against diffusers' own PyTorch model, on the same
 * card in one run.
 *
 *   compiled   the artifact (artifacts/<model>-h100-fp8, -<W>x<H> at another size, compiled now from the
 *              bundled export in models/full when absent), synthetic weights from the seed (labelled so), the captured
 *              CUDA graph replayed --iters times: median ms per step, TFLOP/s for the FLOPs the compiler counts,
 *              the share of the card's FP8 GEMM ceiling, GPU memory, the board's joules a step (NVML; an
 *              H100 runs these steps at its power cap, so energy is what bounds them); then one launch-by-launch pass
 *              timed per launch, summed by stage (GEMMs, attention, element-wise, data movement)
 *   baselines  bench/gpu/baseline_diffusers.py in a child process once the compiled model is closed
 *              (both would not fit one card): diffusers eager, and torch.compile with --compile;
 *              bf16, synthetic weights from the same seed (the same rule, not the same values: the
 *              comparison is of speed; accuracy is checked on the tiny models against PyTorch)
 * diffusers must import (pip install diffusers, or DIFFUSERS_SRC=<checkout>/src); if it does not,
 * the report says so and how to add it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileModel } from '../compiler/compile.ts';
import { fullModelsDir } from '../compiler/full-models.ts';
import { ROOT } from '../compiler/paths.ts';
import { loadModel } from '../runtime/gpu/model.ts';
import { energyWindow, openNvml } from '../runtime/gpu/nvml.ts';
import { randomInputs } from '../runtime/gpu/run-cli.ts';
import type { BenchRow } from './report.ts';

/** The FP8 GEMM ceiling measured on the H100 at Flux.2 shapes (bench/RESULTS.md, cuBLASLt row-wise). */
export const FP8_CEILING_TFLOPS = 1365;

export interface GpuBenchOptions {
  models: string[];
  seed: number;
  iters: number;
  /** Artifact folder per model (default artifacts/<model>-h100-fp8). */
  artifacts: Record<string, string>;
  torchCompile: boolean;
  baseline: boolean;
  /** The baseline script (default bench/gpu/baseline_diffusers.py under the project root). */
  baselineScript?: string;
  /** Where the full-size exports are, to compile an artifact that is absent (default the bundled ones: compiler/full-models.ts fullModelsDir). */
  exports?: string;
  /** The image size, "WxH" (default 1024x1024): the artifact compiled for it, the baseline run at it. */
  size?: string;
}

const DEFAULT_SIZE = '1024x1024';

const SOURCES: Record<string, { shape?: Record<string, number> }> = {
  flux2_dev: { shape: { txt_tokens: 512 } },
  qwen_image: {},
};

/** The model's artifact: `given` or the default folder, else compiled there from the exports (`exports()`, asked only then). */
async function artifactFor(model: string, given: string | undefined, size: string, exports: () => string, log: (s: string) => void): Promise<string | undefined> {
  const dir = given ?? join(ROOT, 'artifacts', `${model}-h100-fp8${size === DEFAULT_SIZE ? '' : `-${size}`}`);
  if (existsSync(join(dir, 'manifest.json'))) return dir;
  const source = join(exports(), model);
  if (!existsSync(source)) {
    log(`${model}: no artifact at ${dir} and no export at ${source}: skipped (pass --artifact ${model}=DIR)`);
    return undefined;
  }
  log(`${model}: compiling ${source} (${size}, fp8) -> ${dir}`);
  await compileModel({ model: source, target: 'h100', precision: 'fp8', size, shape: SOURCES[model]?.shape, out: dir });
  return dir;
}

function diffusersAvailable(env: NodeJS.ProcessEnv): boolean {
  return spawnSync('python3', ['-c', 'import diffusers, torch'], { env, stdio: 'ignore' }).status === 0;
}

export async function gpuBench(o: GpuBenchOptions, log: (s: string) => void): Promise<{ rows: BenchRow[]; stages: Record<string, Record<string, number>>; device: string; notes: string[] }> {
  const rows: BenchRow[] = [];
  const stages: Record<string, Record<string, number>> = {};
  const notes: string[] = [];
  let device = 'unknown GPU';
  const env = { ...process.env, PYTHONPATH: [process.env.DIFFUSERS_SRC, process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONUNBUFFERED: '1' };
  const baseline = o.baseline && diffusersAvailable(env);
  let qwenBatch: number | undefined;
  const size = o.size ?? DEFAULT_SIZE;
  if (size !== DEFAULT_SIZE) notes.push(`At ${size}: the compiled transformers and the baselines at that image size.`);
  if (o.baseline && !baseline) notes.push('PyTorch baseline not run: diffusers (and torch) do not import here. Install them (pip install diffusers), or set DIFFUSERS_SRC to a diffusers checkout\'s src folder.');
  for (const model of o.models) {
    const dir = await artifactFor(model, o.artifacts[model], size, () => o.exports ?? fullModelsDir(), log);
    if (!dir) { notes.push(`${model}: no artifact and no export; skipped.`); continue; }
    const m = loadModel(dir, { syntheticWeights: o.seed, log: (l) => log(`${model}: ${l}`) });
    let flops = 0;
    try {
      device = m.device.name;
      const manifest = m.artifact.manifest as unknown as { flops: number; batch?: number; io: { inputs: { name: string; dtype: string; shape: number[] }[] } };
      flops = manifest.flops;
      if (model === 'qwen_image') qwenBatch = manifest.batch ?? 1;
      m.run(randomInputs(manifest.io.inputs, o.seed + 1));
      const closeEnergy = energyWindow(openNvml(m.device.pciBusId));
      const t = m.time(o.iters, true), energy = closeEnergy(o.iters);
      const tflops = flops / (t.medianMs / 1e3) / 1e12;
      const joules = energy ? `; ${energy.joulesPerRun.toFixed(1)} J a step (board, NVML: ${energy.meanWatts.toFixed(0)} W mean, SM ${energy.smClockMHz} MHz)` : '';
      rows.push({ model, system: 'compiled (fp8, CUDA graph)', msPerStep: t.medianMs, tflops, memoryGiB: m.memory.deviceUsedBytes / 2 ** 30, note: `min ${t.minMs.toFixed(1)} ms over ${o.iters}${joules}` });
      // A step whose timestep-only launches are restored from an earlier step with the same timestep
      // and guidance (runtime/gpu/memo.ts: every step of a request after the first of its size and step count).
      const memo = m.timeMemo(o.iters);
      if (memo) {
        if (!memo.identical) notes.push(`${model}: the step memo's outputs DIFFER from the full step's: a runtime bug, report it.`);
        rows.push({ model, system: 'compiled, step memo (a repeated timestep)', msPerStep: memo.medianMs, tflops: flops / (memo.medianMs / 1e3) / 1e12, memoryGiB: m.memory.deviceUsedBytes / 2 ** 30,
          note: `${memo.launchesSkipped} launches restored, not computed; the full step alternating with it ${memo.full.medianMs.toFixed(1)} ms; outputs ${memo.identical ? 'identical' : 'DIFFERENT'}` });
      }
      const byStage: Record<string, number> = {};
      for (const l of m.profile()) byStage[l.label] = (byStage[l.label] ?? 0) + l.ms;
      stages[model] = byStage;
      log(`${model}: compiled ${t.medianMs.toFixed(1)} ms/step (${tflops.toFixed(0)} TFLOP/s)`);
    } finally {
      m.close();
    }
    if (!baseline) continue;
    const out = join(mkdtempSync(join(tmpdir(), 'bench-')), 'baseline.json');
    const modes = o.torchCompile ? 'eager,compile' : 'eager';
    const r = spawnSync('python3', [o.baselineScript ?? join(ROOT, 'bench', 'gpu', 'baseline_diffusers.py'), model, '--out', out, '--seed', String(o.seed), '--iters', '5', '--flops', String(flops), '--modes', modes, '--size', size], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0 || !existsSync(out)) { notes.push(`${model}: the PyTorch baseline failed (exit ${r.status}); see its output above.`); continue; }
    const b = JSON.parse(readFileSync(out, 'utf8')) as { modes: Record<string, { ms: number; tflops?: number; peak_gib: number; compile_s?: number }> };
    for (const [mode, e] of Object.entries(b.modes)) {
      rows.push({ model, system: mode === 'eager' ? 'diffusers eager (bf16)' : 'diffusers torch.compile (bf16)', msPerStep: e.ms, tflops: e.tflops, memoryGiB: e.peak_gib, note: e.compile_s ? `compile ${e.compile_s.toFixed(0)} s` : undefined });
    }
  }
  // The diffusers baseline runs one CFG pass a step; a batch-2 artifact (npx compile --batch 2) runs both at once.
  if (qwenBatch === 2) notes.push(`Qwen-Image: the compiled row is a whole true-CFG step (both passes in one batch-2 run)${baseline ? '; the diffusers rows are one pass of the two' : ''}.`);
  else if (qwenBatch === 1) notes.push('Qwen-Image: the artifact is batch 1, so a step is one of the two true-CFG passes; a CFG step is two of them.');
  else if (qwenBatch !== undefined) notes.push(`Qwen-Image: the artifact is batch ${qwenBatch}: its row is one run of ${qwenBatch} samples.`);
  return { rows, stages, device, notes };
}
