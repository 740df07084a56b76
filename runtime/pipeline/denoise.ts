/**
 * The denoising loop of both families (executor/types.ts DenoiseLoop): `denoise(exec, loop)` runs it
 * on the device when the executor can (the GPU one: runtime/gpu/model.ts denoise, Euler and CFG
 * kernels from runtime/gpu/support.cu, no host round trip per step), else here on the host, one
 * network call per prediction. Both give the same float32 latents bit for bit (test/gpu/denoise-loop.ts:
 * a transformer's latents through both loops): every operation below is a float32 rounding the kernels repeat.
 *
 *   v      = first output of run(inputs[0] + latents + timesteps[i])
 *   CFG    v = trueCfg(v, v_uncond, scale, channels)        (two input sets, Qwen-Image's true CFG)
 *   Euler  latents = f32(latents + f32(f32(sigmas[i+1] - sigmas[i]) * v))   (flow_match.ts eulerStep)
 *
 * A bfloat16 latents input gets its bits from the Euler step's own pass, and one latents Tensor
 * serves both CFG passes of a step (an executor stages it once).
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import { bitsTensor, valuesOf } from '../executor/bf16.ts';
import { type DenoiseLoop, type Executor, inputDtype } from '../executor/types.ts';
import { eulerStep } from './flow_match.ts';
import { type GenerateRequest, type StageTimings, throwIfAborted } from './types.ts';

const f = Math.fround;

/** The loop on the device where the executor offers it, else on the host. */
export function denoise(exec: Executor, loop: DenoiseLoop): Promise<Float32Array> {
  check(loop);
  return exec.denoise ? exec.denoise(loop) : hostDenoise(exec, loop);
}

/**
 * A request's onStep for its loop: reports the step to the request, stops an aborted request there,
 * and keeps each step's device time where the loop gives it (`timings()`: StageTimings.stepsMs).
 */
export function requestSteps(req: GenerateRequest): { onStep: NonNullable<DenoiseLoop['onStep']>; timings(): Pick<StageTimings, 'stepsMs'> } {
  const stepsMs: number[] = [];
  return {
    onStep: (step, latents, deviceMs) => {
      if (deviceMs !== undefined) stepsMs.push(deviceMs);
      req.onStep?.(step, req.steps, latents);
      throwIfAborted(req.signal);
    },
    timings: () => (stepsMs.length ? { stepsMs } : {}),
  };
}

function check(loop: DenoiseLoop): void {
  const n = loop.timesteps.length;
  const count = loop.latentsShape.reduce((a, b) => a * b, 1);
  if (count !== loop.latents.length) throw new Error(`denoise: ${loop.latents.length} latents for the shape [${loop.latentsShape}] (${count} values)`);
  if (loop.sigmas.length !== n + 1) throw new Error(`denoise: ${loop.sigmas.length} sigmas for ${n} steps (expected ${n + 1})`);
  if (loop.inputs.length !== (loop.cfg ? 2 : 1)) throw new Error(`denoise: ${loop.inputs.length} input sets ${loop.cfg ? 'with' : 'without'} CFG (expected ${loop.cfg ? 2 : 1})`);
  if (loop.cfg && loop.latents.length % loop.cfg.channels) throw new Error(`denoise: ${loop.latents.length} latents are not tokens of ${loop.cfg.channels} channels`);
}

/** The loop with one network call per prediction and the Euler step on the host. */
export async function hostDenoise(exec: Executor, loop: DenoiseLoop): Promise<Float32Array> {
  const latents = loop.latents.slice();
  const shape = [...loop.latentsShape];
  const stageBits = inputDtype(exec, loop.latentsInput) === 'bfloat16';
  const schedule = { sigmas: loop.sigmas, timesteps: loop.timesteps };
  const scratch = [new Float32Array(latents.length), new Float32Array(latents.length)];
  const velocity = (out: Record<string, Tensor>, into: Float32Array) => valuesOf(Object.values(out)[0], into);
  let hidden = new Tensor('float32', shape, latents);
  for (let i = 0; i < loop.timesteps.length; i++) {
    const step = { [loop.latentsInput]: hidden, [loop.timestepInput]: new Tensor('float32', [1], Float32Array.of(loop.timesteps[i])) };
    let v: Float32Array;
    if (loop.cfg) {
      const [c, u] = exec.runMany
        ? await exec.runMany(loop.inputs.map((set) => ({ ...set, ...step })))
        : [await exec.run({ ...loop.inputs[0], ...step }), await exec.run({ ...loop.inputs[1], ...step })];
      v = trueCfg(velocity(c, scratch[0]), velocity(u, scratch[1]), loop.cfg.scale, loop.cfg.channels);
    } else {
      v = velocity(await exec.run({ ...loop.inputs[0], ...step }), scratch[0]);
    }
    const last = i + 1 === loop.timesteps.length;
    const staged = stageBits && !last ? new Uint16Array(latents.length) : undefined;
    eulerStep(latents, v, schedule, i, staged);
    hidden = staged ? bitsTensor(shape, staged, true) : new Tensor('float32', shape, latents);
    loop.onStep?.(i + 1, latents);
  }
  return latents;
}

/**
 * Qwen-Image's true CFG, per token of K channels (PIPELINE.md): out = u + s*(c - u), rescaled by
 * ||c|| / ||out||, float32 roundings as diffusers' float32 pipeline; the norms' sums in float64, their
 * square roots rounded to float32 (the CFG kernel in runtime/gpu/support.cu does the same).
 */
export function trueCfg(vc: Float32Array, vu: Float32Array, scale: number, K: number): Float32Array {
  if (vc.length !== vu.length || vc.length % K) throw new Error(`true CFG: predictions of ${vc.length} and ${vu.length} values, ${K} channels`);
  const s = f(scale);
  const out = new Float32Array(vc.length);
  for (let t = 0; t < vc.length; t += K) {
    let cn = 0, nn = 0;
    for (let k = t; k < t + K; k++) {
      const c = vc[k], u = vu[k];
      const o = f(u + f(s * f(c - u))); // the value out[k] stores
      out[k] = o;
      cn += c * c;
      nn += o * o;
    }
    const ratio = f(f(Math.sqrt(cn)) / f(Math.sqrt(nn)));
    for (let k = t; k < t + K; k++) out[k] = out[k] * ratio;
  }
  return out;
}
