/**
 * The denoising loop on the device against the host loop, on the GPU host (runtime/gpu/denoise.ts
 * vs runtime/pipeline/denoise.ts hostDenoise): the same transformer module, the same inputs, the
 * same schedule; the final float32 latents must agree bit for bit, and each loop's wall time is
 * printed (median of --iters after one warm-up each, alternating).
 *
 *   tsx test/gpu/denoise-loop.ts MODULE_DIR [--cfg] [--steps 8] [--iters 3] [--synthetic-weights 42]
 *
 * MODULE_DIR: a compiled transformer (a pipeline artifact's transformer/ folder). --cfg: two input
 * sets (Qwen-Image's true CFG, scale 4, the latents input's last axis as channels) on two replicas. Inputs other than the
 * latents and timestep are drawn from a seed (float: normal; integer masks and ids: 1). Prints one
 * JSON line; exits 1 when the latents differ. Bundled for the GPU host by esbuild like
 * runtime/gpu/pack.ts (no Node there).
 */
import { parseArgs } from 'node:util';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { loadModel } from '../../runtime/gpu/model.ts';
import { gpuExecutorFactory } from '../../runtime/executor/gpu.ts';
import type { DenoiseLoop, Executor } from '../../runtime/executor/types.ts';
import { hostDenoise } from '../../runtime/pipeline/denoise.ts';
import { flowMatchSchedule, timestepInputs } from '../../runtime/pipeline/flow_match.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';
import { seededInputs } from './seeded-inputs.ts';

const { values: v, positionals } = parseArgs({
  allowPositionals: true,
  options: { cfg: { type: 'boolean' }, steps: { type: 'string', default: '8' }, iters: { type: 'string', default: '3' }, 'synthetic-weights': { type: 'string', default: '42' } },
});
const dir = positionals[0];
if (!dir) throw new Error('usage: denoise-loop.ts MODULE_DIR [--cfg] [--steps N] [--iters N] [--synthetic-weights SEED]');
const steps = Number(v.steps), iters = Number(v.iters), cfg = !!v.cfg;

const exec: Executor = await gpuExecutorFactory({ loadModel: (d, o) => loadModel(d, o) }, { syntheticWeights: Number(v['synthetic-weights']) })(
  { role: 'transformer', onnx: dir, compiled: dir, ...(cfg ? { concurrentRuns: 2 } : {}) },
);
if (!exec.denoise) throw new Error(`${dir}: the module has no device loop (its support unit predates the Euler kernels: recompile)`);

const latentsInput = 'hidden_states', timestepInput = 'timestep';
const count = (shape: readonly (number | string)[]) => shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);
const inputSet = (seed: number) => seededInputs(exec.inputs, seed, new Set([latentsInput, timestepInput]));
const lat = exec.inputs.find((i) => i.name === latentsInput)!;
const schedule = flowMatchSchedule(steps, { mu: 1.15 });
const loop: DenoiseLoop = {
  inputs: cfg ? [inputSet(1), inputSet(2)] : [inputSet(1)],
  latentsInput, timestepInput,
  latents: new GaussianNoise(7).fill(count(lat.shape)), latentsShape: lat.shape.map(Number),
  sigmas: schedule.sigmas, timesteps: timestepInputs(schedule),
  ...(cfg ? { cfg: { scale: 4, channels: Number(lat.shape.at(-1)) } } : {}),
};

const timed = async (f: () => Promise<Float32Array>) => { const t = performance.now(); const r = await f(); return { r, ms: performance.now() - t }; };
const host = () => hostDenoise(exec, loop), device = () => exec.denoise!(loop);
let a = (await timed(host)).r, b = (await timed(device)).r; // warm-up (graph capture)
const hostMs: number[] = [], deviceMs: number[] = [];
for (let i = 0; i < iters; i++) {
  const h = await timed(host); hostMs.push(h.ms); a = h.r;
  const d = await timed(device); deviceMs.push(d.ms); b = d.r;
}
const ua = new Uint32Array(a.buffer), ub = new Uint32Array(b.buffer);
let differ = 0;
for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) differ++;
const median = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)];
console.log(JSON.stringify({ module: dir, cfg, steps, values: a.length, differ, hostMs: median(hostMs), deviceMs: median(deviceMs), hostAll: hostMs, deviceAll: deviceMs, finite: b.every(Number.isFinite) }));
await exec.release();
process.exitCode = differ ? 1 : 0;
