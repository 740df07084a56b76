/**
 * Where a pipeline's text-encode stage goes in the requests after a load (GPU host): loads a pipeline
 * artifact with synthetic weights 42 and runs N identical requests back to back (1024x1024, 8 steps,
 * seed 42), printing for each its index, seconds since the load, whether the noise pool was ready
 * (runtime/pipeline/noise.ts: else the noise is drawn on this thread), the stage's milliseconds
 * (GeneratedImage.timings.encodeMs), the garbage collection inside that window (perf_hooks 'gc'
 * entries), the denoise stage beside its steps' device times (GeneratedImage.timings.stepsMs) and the VAE
 * decode stage, and how long cuCtxSynchronize takes right after the request returns (GPU work the request
 * left in flight). --warm-pool K first waits for the pool and draws K full-size noises through it.
 *
 *   node bench/gpu/encode-stage.mjs ARTIFACT [--requests 8] [--warm-pool K]   (bundled by esbuild; no Node on the host)
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { gpuExecutorFactory, loadGpuRuntime } from '../../runtime/executor/gpu.ts';
import { loadDriver } from '../../runtime/gpu/cuda.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { GaussianNoise, sharedNoisePool } from '../../runtime/pipeline/noise.ts';

const { values: v, positionals } = parseArgs({ allowPositionals: true, options: { requests: { type: 'string', default: '8' }, 'warm-pool': { type: 'string', default: '0' } } });
if (!positionals[0]) throw new Error('usage: encode-stage.ts ARTIFACT [--requests N] [--warm-pool K]');
const gcs: { start: number; ms: number }[] = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) gcs.push({ start: e.startTime, ms: e.duration }); }).observe({ entryTypes: ['gc'] });

const t0 = performance.now();
const p = await loadPipeline(positionals[0], gpuExecutorFactory(await loadGpuRuntime(), { syntheticWeights: 42 }));
const pool = sharedNoisePool();
const d = loadDriver();
console.log(`loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s; noise pool of ${pool?.size ?? 0}, ready ${pool?.ready ?? false}`);
const warm = Number(v['warm-pool']);
if (warm && pool) {
  while (!pool.ready) await new Promise((r) => setTimeout(r, 20));
  const t = performance.now();
  for (let i = 0; i < warm; i++) await new GaussianNoise(i).fillAsync(128 * 64 * 64, pool);
  console.log(`pool warmed: ${warm} draws through it in ${(performance.now() - t).toFixed(1)} ms`);
}
const req = { prompt: 'A photograph of a red fox standing in fresh snow at dawn, soft light', size: { width: 1024, height: 1024 }, steps: 8, guidanceScale: 4, seed: 42 };
for (let i = 0; i < Number(v.requests); i++) {
  const ready = pool?.ready ?? false, at = (performance.now() - t0) / 1000, start = performance.now();
  const img = await p.generate(req);
  const s = performance.now();
  d.call('cuCtxSynchronize');
  const sync = performance.now() - s;
  const gc = gcs.filter((g) => g.start >= start && g.start < start + img.timings.encodeMs).reduce((a, g) => a + g.ms, 0);
  const steps = img.timings.stepsMs ?? [];
  const inSteps = steps.reduce((a, b) => a + b, 0);
  console.log(`request ${i}: at ${at.toFixed(1)} s, pool ready ${ready}, text encode ${img.timings.encodeMs.toFixed(1)} ms (gc ${gc.toFixed(1)}), denoise ${img.timings.denoiseMs.toFixed(1)} ms (steps on the device ${inSteps.toFixed(1)}: ${steps.map((x) => x.toFixed(1)).join(' ')}), VAE decode ${img.timings.decodeMs.toFixed(1)} ms, then cuCtxSynchronize ${sync.toFixed(2)} ms`);
}
await p.release();
