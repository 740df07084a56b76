/**
 * Flow-matching Euler (diffusers' FlowMatchEulerDiscreteScheduler, the deterministic path both
 * Flux.2 and Qwen-Image use), emulated in float32 exactly as NumPy 2 / torch compute it:
 *
 *   s_i     = float32(linspace_f64(1, 1/N, N))                       (i = 0..N-1)
 *   sigma_i = f32(E / f32(E + f32(f32(1/s_i) - 1)))  with E = f32(e^mu)   ("exponential" shift)
 *   [shift_terminal T: z_i = f32(1 - sigma_i), k = f32(z_{N-1} / f32(1 - T)), sigma_i = f32(1 - f32(z_i / k))]
 *   t_i     = f32(sigma_i * 1000);  sigmas gets a terminal 0 (N+1 values), timesteps do not (N).
 *   step:   x_{i+1} = f32(x_i + f32(f32(sigma_{i+1} - sigma_i) * v))      (float32 pipeline)
 *
 * The model rule that picks mu lives with each family (models/<family>/scheduler.ts). Every
 * Math.fround marks one float32 rounding of NumPy/torch; a NumPy op between a float32 array and
 * a Python float rounds the Python float to float32 first (NEP 50).
 */

const f = Math.fround;

/** numpy.linspace(start, stop, num) in float64 (y_i = start + i*step, last = stop exactly). */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

export interface Schedule {
  /** N+1 float32 values, the last one 0. */
  sigmas: Float32Array;
  /** N float32 values, sigma_i * 1000. */
  timesteps: Float32Array;
}

export interface ScheduleOptions {
  mu: number;
  /** diffusers' shift_terminal (Qwen-Image: 0.02); undefined = none. */
  shiftTerminal?: number;
  numTrainTimesteps?: number;
}

export function flowMatchSchedule(steps: number, opts: ScheduleOptions): Schedule {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  const s = linspace(1, 1 / steps, steps).map(f);
  const e = f(Math.exp(opts.mu));
  let sig = s.map((si) => f(e / f(e + f(f(1 / si) - 1))));
  if (opts.shiftTerminal !== undefined) {
    const z = sig.map((x) => f(1 - x));
    const k = f(z[steps - 1] / f(1 - opts.shiftTerminal));
    sig = z.map((zi) => f(1 - f(zi / k)));
  }
  const T = opts.numTrainTimesteps ?? 1000;
  const sigmas = new Float32Array(steps + 1);
  sigmas.set(sig);
  return { sigmas, timesteps: Float32Array.from(sig, (x) => f(x * T)) };
}

/** The transformer's `timestep` input for step i of a float32 pipeline: f32(t_i / 1000). */
export function timestepInput(schedule: Schedule, i: number, numTrainTimesteps = 1000): number {
  return f(schedule.timesteps[i] / numTrainTimesteps);
}

/** Every step's timestep input (timestepInput for i = 0..N-1). */
export function timestepInputs(schedule: Schedule, numTrainTimesteps = 1000): Float32Array {
  return Float32Array.from(schedule.timesteps, (_, i) => timestepInput(schedule, i, numTrainTimesteps));
}

/**
 * One Euler step in place: latents += (sigma_{i+1} - sigma_i) * v, float32 rounding per op. With
 * `staged`, the new latents' bfloat16 bits (dtype.ts f32ToBf16: nearest even, NaN 0x7fc0) are
 * written there in the same pass — what a bfloat16 transformer input is staged from next step.
 */
export function eulerStep(latents: Float32Array, v: Float32Array, schedule: Schedule, i: number, staged?: Uint16Array): void {
  if (v.length !== latents.length) throw new Error(`euler step: velocity has ${v.length} values, latents ${latents.length}`);
  const dt = f(schedule.sigmas[i + 1] - schedule.sigmas[i]);
  const n = latents.length;
  if (!staged) {
    for (let j = 0; j < n; j++) latents[j] = latents[j] + f(dt * v[j]);
    return;
  }
  if (staged.length !== n) throw new Error(`euler step: ${staged.length} staged values for ${n} latents`);
  const bits = new Uint32Array(latents.buffer, latents.byteOffset, n);
  for (let j = 0; j < n; j++) {
    latents[j] = latents[j] + f(dt * v[j]);
    const b = bits[j];
    staged[j] = (b & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
}
