/**
 * Whether a denoising step's device time depends on its data (GPU host): loads a pipeline artifact with
 * synthetic weights 42 and runs one 1024x1024 request (8 steps, seed 42) with the loop on the host, so
 * that after each step's run() the transformer's arena holds that step's inputs; there it times the
 * step's CUDA graph alone (Model.time, the full plan) and the step memo's restoring step against the
 * full one (Model.timeMemo), on that step's data. Then `--device-requests N` requests with the loop on
 * the device print each step's device time inside the request (GeneratedImage.timings.stepsMs), for
 * the same steps under the loop's own conditions, and the wall-clock time the host saw each step done (to
 * align with a clock and power sampler such as `nvidia-smi -lms`). `--host-request 0` skips the host-loop
 * request; `--series N` then replays the graph N times, each timed alone.
 *
 *   node bench/gpu/step-data.mjs ARTIFACT [--reps 5] [--device-requests 2] [--host-request 1] [--series 0]   (bundled by esbuild; no Node on the host)
 */
import { parseArgs } from 'node:util';
import { gpuExecutorFactory } from '../../runtime/executor/gpu.ts';
import type { ExecutorFactory } from '../../runtime/executor/types.ts';
import { type Model, loadModel } from '../../runtime/gpu/model.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';

const { values: v, positionals } = parseArgs({ allowPositionals: true, options: {
  reps: { type: 'string', default: '5' }, 'device-requests': { type: 'string', default: '2' }, 'host-request': { type: 'string', default: '1' }, series: { type: 'string', default: '0' },
} });
if (!positionals[0]) throw new Error('usage: step-data.ts ARTIFACT [--reps N] [--device-requests N]');
const reps = Number(v.reps);
const models = new Map<string, Model>();
const gpu = gpuExecutorFactory({ loadModel: (dir, o) => { const m = loadModel(dir, o); models.set(dir, m); return m; } }, { syntheticWeights: 42 });
let hostLoop = true;
const transformerDirs = new Set<string>();
// The transformer's executor without its device loop while `hostLoop` (the pipeline then calls run() once a step).
const factory: ExecutorFactory = async (g) => {
  const e = await gpu(g);
  if (g.role !== 'transformer') return e;
  transformerDirs.add(g.compiled!);
  const loop = e.denoise;
  return { ...e, forSize: undefined, run: async (x) => { const out = await e.run(x); afterRun(); return out; }, get denoise() { return hostLoop ? undefined : loop; } };
};
let step = 0;
function afterRun(): void {
  const m = models.get([...transformerDirs][0])!;
  step++;
  const graph = m.time(reps, true);
  const memo = m.timeMemo(reps);
  console.log(`step ${step}: graph alone on this step's inputs median ${graph.medianMs.toFixed(1)} ms (min ${graph.minMs.toFixed(1)})${memo ? `; memo restoring ${memo.medianMs.toFixed(1)} / full ${memo.full.medianMs.toFixed(1)} ms, identical ${memo.identical}` : ''}`);
}
const p = await loadPipeline(positionals[0], factory);
const req = { prompt: 'A photograph of a red fox standing in fresh snow at dawn, soft light', size: { width: 1024, height: 1024 }, steps: 8, guidanceScale: 4, seed: 42 };
const host = v['host-request'] === '1' ? await p.generate(req) : null;
if (host) console.log(`host-loop request: denoise ${host.timings.denoiseMs.toFixed(1)} ms (timing included)`);
hostLoop = false;
for (let i = 0; i < Number(v['device-requests']); i++) {
  const at: string[] = []; // when the host saw each step done (wall clock, ms past the second), to align with nvidia-smi's samples
  const img = await p.generate({ ...req, onStep: () => { const t = new Date(); at.push(`${t.toISOString().slice(11, 19)}.${String(t.getMilliseconds()).padStart(3, '0')}`); } });
  const same = host ? Buffer.compare(Buffer.from(img.rgb), Buffer.from(host.rgb)) === 0 : null;
  console.log(`device-loop request ${i}: denoise ${img.timings.denoiseMs.toFixed(1)} ms, steps on the device ${(img.timings.stepsMs ?? []).map((x) => x.toFixed(1)).join(' ')}${same === null ? '' : `; image ${same ? 'identical to' : 'DIFFERENT from'} the host loop's`}; steps seen done at ${at.join(' ')}`);
}
// The transformer's graph replayed back to back, each replay timed alone: does the card slow some of them in a rhythm of its own?
const series = Number(v.series);
if (series) {
  const m = models.get([...transformerDirs][0])!;
  const t0 = new Date();
  const each = Array.from({ length: series }, () => m.time(1, true).medianMs);
  console.log(`graph replays from ${t0.toISOString().slice(11, 23)}, one at a time (each synchronised; last step's inputs): ${each.map((x) => x.toFixed(1)).join(' ')}`);
}
await p.release();
process.exit(0);
