/**
 * The denoising loop on the device (runtime/executor/types.ts DenoiseLoop; loadModel's `denoise`).
 *
 * Upload once: the float32 latents and every step's timestep input (in the timestep slot's type).
 * A support kernel (runtime/gpu/support.cu dc_euler_step with no velocity) writes the first latents
 * input into each replica's slot. Step i: each input set's replica gets the timestep (a device copy
 * into its slot) and its CUDA graph, on its own stream; then on replica 0's stream, after replica
 * 1's work (an event), dc_euler_step or dc_cfg_euler_step (true CFG of both replicas' outputs)
 * updates the latents and writes the next latents input into every replica's slot; replica 1's
 * stream waits for that before its next step. The host enqueues step i+1 before it waits for step
 * i (an event), so the GPU never waits for the host; onStep runs as each step completes, with the
 * step's device time (between the events on replica 0's stream that end the step before and this
 * one: the step's graphs, the CFG or Euler kernel, and any time the GPU waited for the host), and an
 * exception from it stops the loop once the enqueued step drains. The host waits for each step
 * without blocking Node's event loop (cuda.ts eventDone): a server answers while the loop runs. The same float32 operations as
 * runtime/pipeline/denoise.ts hostDenoise, bit for bit.
 *
 * A model compiled at batch 2 (`npx compile --batch 2`; LoopDevice.batch) runs true CFG's two input
 * sets as one run on replica 0: the sets are stacked along axis 0 (staged once per request), each
 * step's timestep is copied into both samples' slots, the Euler kernels write the latents into both
 * halves of the latents input, and the CFG kernel reads the two halves of the output.
 *
 * With a step memo (LoopDevice.memo, runtime/gpu/memo.ts) each step runs under its key (the
 * timestep's bytes and the guidance's): the launches that depend on nothing else are computed the
 * first time a key is seen and restored after that (a request of the same size and step count as
 * an earlier one restores them at every step), with the same outputs bit for bit.
 */
import { fail } from '../../compiler/errors.ts';
import { f32ToBf16Array } from '../executor/bf16.ts';
import { stackSamples } from '../executor/batch.ts';
import type { DenoiseLoop } from '../executor/types.ts';
import type { IoSpec, Manifest } from './artifact.ts';
import { type DevicePtr, type Driver, type Handle, KernelParams, alloc, createEvent, eventDone, launch } from './cuda.ts';
import type { HostIo } from './model.ts';

export interface LoopReplica { stream: Handle; arena: DevicePtr; host: HostIo }

export interface LoopDevice {
  d: Driver;
  manifest: Manifest;
  replicas: LoopReplica[];
  /** Captures each replica's graph if needed (before anything runs), then launches one replica's plan on its stream. */
  prepare(count: number): void;
  launchPlan(r: number): void;
  euler: Handle;
  cfgEuler: Handle | null;
  /** Samples one run computes (the module's compile-time batch, 1 unless compiled with --batch). */
  batch: number;
  multiprocessors: number;
  /** Checks an input set (with the loop's latents and timestep slots as the artifact declares them). */
  checkInputs(given: Record<string, { dtype: string; shape: readonly number[] }>): void;
  /**
   * The step memo (runtime/gpu/memo.ts), or null: the inputs its keys are made of; reserve() every
   * key of a request before its first step (false: they do not fit, the request runs without it),
   * then launch(k, key) runs replica k's step instead of launchPlan(k), restoring the memoized
   * values where that key was computed before.
   */
  memo: { inputs: readonly string[]; reserve(keys: { replica: number; key: string }[]): boolean; launch(k: number, key: string): void } | null;
}

/** The `kind` argument of support.cu's loop and RGB8 kernels for a buffer of this dtype. */
export const SUPPORT_KIND: Record<string, number> = { float32: 0, bfloat16: 1 };
const count = (s: IoSpec) => s.shape.reduce((a, b) => a * b, 1);

function kindOf(spec: IoSpec, what: string): number {
  const k = SUPPORT_KIND[spec.dtype];
  if (k === undefined) fail(`denoise: ${what} '${spec.name}'`, 'float32 or bfloat16', spec.dtype);
  return k;
}

/** Every timestep input in the slot's type: float32 bytes, or bfloat16 bits (nearest even). */
function timestepBytes(values: Float32Array, kind: number): Uint8Array {
  const typed = kind === 0 ? Float32Array.from(values) : f32ToBf16Array(values);
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

export async function deviceDenoise(dev: LoopDevice, loop: DenoiseLoop): Promise<Float32Array> {
  const { d, manifest: m } = dev;
  const sets = loop.inputs.length, steps = loop.timesteps.length;
  const where = `denoise (${m.model})`;
  const batched = dev.batch > 1;
  if (batched && (dev.batch !== 2 || sets !== 2)) fail(where, 'a batch-2 model to run the two input sets of true CFG', `batch ${dev.batch}, ${sets} input sets`);
  if (sets < 1 || sets > (batched ? 2 : Math.min(2, dev.replicas.length))) fail(where, `1 input set, or 2 with CFG on a model loaded with 2 replicas (has ${dev.replicas.length}) or compiled at batch 2`, `${sets}`);
  if ((sets === 2) !== !!loop.cfg) fail(where, 'CFG exactly when there are two input sets', `${sets} sets, cfg ${loop.cfg ? 'on' : 'off'}`);
  if (loop.cfg && !dev.cfgEuler) fail(where, 'the CFG kernel in the artifact\'s support unit', 'none (recompile)');
  if (loop.sigmas.length !== steps + 1) fail(where, `${steps + 1} sigmas for ${steps} steps`, `${loop.sigmas.length}`);
  const input = (name: string) => m.io.inputs.find((i) => i.name === name) ?? fail(where, `an input '${name}'`, `inputs ${m.io.inputs.map((i) => i.name).join(', ')}`);
  const lat = input(loop.latentsInput), ts = input(loop.timestepInput), out = m.io.outputs[0];
  const n = loop.latents.length, samples = batched ? 2 : 1;
  if (count(lat) !== samples * n || count(out) !== samples * n) fail(where, `latents input and first output of ${samples} x ${n} values`, `${count(lat)} and ${count(out)}`);
  if (count(ts) !== samples) fail(`denoise: timestep input '${ts.name}'`, `${samples} value(s)`, `[${ts.shape}]`);
  if (loop.cfg && n % loop.cfg.channels) fail(where, `latents in tokens of ${loop.cfg.channels} channels`, `${n} values`);
  const latKind = kindOf(lat, 'latents input'), outKind = kindOf(out, 'output'), tsKind = kindOf(ts, 'timestep input');
  const slots = { [lat.name]: { dtype: lat.dtype, shape: lat.shape }, [ts.name]: { dtype: ts.dtype, shape: ts.shape } };
  const inputSets = batched ? [stackSamples(loop.inputs, new Set([lat.name, ts.name]))] : loop.inputs;
  for (const set of inputSets) dev.checkInputs({ ...Object.fromEntries(Object.entries(set).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }])), ...slots });

  const used = dev.replicas.slice(0, inputSets.length);
  const skip = new Set([lat.name, ts.name]);
  const tsBytes = timestepBytes(Float32Array.from({ length: steps * samples }, (_, k) => loop.timesteps[Math.floor(k / samples)]), tsKind), tsSize = tsBytes.length / steps;
  // The step memo's key of set k at step i: the timestep's bytes and the other key inputs' (guidance);
  // unused where a key input is the latents or not in the sets.
  let memo = dev.memo && dev.memo.inputs.every((name) => name === ts.name || (name !== lat.name && inputSets.every((set) => set[name]))) ? dev.memo : null;
  const hex = (b: ArrayBufferView) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  // keys[k][i], made once a request.
  const keys = memo ? inputSets.map((set) => Array.from({ length: steps }, (_, i) => memo!.inputs.map((name) => (name === ts.name ? hex(tsBytes.subarray(i * tsSize, (i + 1) * tsSize)) : `${name}=${hex(set[name].data as ArrayBufferView)}`)).join('|'))) : [];
  const [s0, s1] = [used[0].stream, used[1]?.stream];
  const latBytes = n * (latKind === 0 ? 4 : 2), outBytes = n * (outKind === 0 ? 4 : 2);
  // Where the Euler kernels write the next latents input (one per sample or replica; 0: none) and the CFG kernel reads the two predictions.
  const latSlot = (r: number) => (batched ? used[0].arena + lat.offset + r * latBytes : r < sets ? used[r].arena + lat.offset : 0);
  const outOf = (r: number) => (batched ? used[0].arena + out.offset + r * outBytes : used[r].arena + out.offset);
  const f32 = Math.fround;
  // ends[i]: recorded on replica 0's stream after step i-1 (ends[0]: before step 0); cross: the two cross-stream events.
  const buffers: DevicePtr[] = [], ends: Handle[] = [], cross: Handle[] = [];
  let latents = 0, timesteps = 0;
  const launchEuler = (v: DevicePtr | 0, dt: number) => launch(d, dev.euler, Math.max(1, Math.min(Math.ceil(n / 256), dev.multiprocessors * 8)), 256, 0, s0,
    new KernelParams([{ ptr: latents }, { ptr: v }, { i32: outKind }, { f32: dt }, { ptr: latSlot(0) }, { ptr: latSlot(1) }, { i32: latKind }, { i64: n }]));
  const enqueue = (i: number) => {
    used.forEach((r, k) => {
      r.host.stage(inputSets[k], skip); // copies only what a run overwrote (intactInputs) or what is new
      d.call('cuMemcpyDtoDAsync', r.arena + ts.offset, timesteps + i * tsSize, tsSize, r.stream);
      if (memo) memo.launch(k, keys[k][i]);
      else dev.launchPlan(k);
    });
    const dt = f32(loop.sigmas[i + 1] - loop.sigmas[i]);
    if (sets === 2) {
      if (s1) { d.call('cuEventRecord', cross[0], s1); d.call('cuStreamWaitEvent', s0, cross[0], 0); }
      const tokens = n / loop.cfg!.channels;
      launch(d, dev.cfgEuler!, Math.ceil(tokens / 128), 128, 0, s0, new KernelParams([
        { ptr: latents }, { ptr: outOf(0) }, { ptr: outOf(1) }, { i32: outKind }, { f32: f32(loop.cfg!.scale) }, { f32: dt },
        { ptr: latSlot(0) }, { ptr: latSlot(1) }, { i32: latKind }, { i32: tokens }, { i32: loop.cfg!.channels },
      ]));
      if (s1) { d.call('cuEventRecord', cross[1], s0); d.call('cuStreamWaitEvent', s1, cross[1], 0); }
    } else {
      launchEuler(used[0].arena + out.offset, dt);
    }
    d.call('cuEventRecord', ends[i + 1], s0);
  };

  let failed: unknown = null;
  const result = new Float32Array(n);
  try {
    buffers.push((latents = alloc(d, 4 * n, `denoise latents (${m.model})`)));
    buffers.push((timesteps = alloc(d, tsBytes.length, `denoise timesteps (${m.model})`)));
    for (let k = 0; k < 2; k++) cross.push(createEvent(d));
    for (let k = 0; k <= steps; k++) ends.push(createEvent(d));
    // On replica 0's stream, ahead of everything that reads them (replica 1 waits for the first Euler kernel).
    d.call('cuMemcpyHtoDAsync', latents, loop.latents, 4 * n, s0);
    d.call('cuMemcpyHtoDAsync', timesteps, tsBytes, tsBytes.length, s0);
    dev.prepare(used.length);
    if (memo && !memo.reserve(used.flatMap((_, k) => keys[k].map((key) => ({ replica: k, key }))))) memo = null;
    launchEuler(0, 0); // the first latents input, into every replica's (or sample's) slot
    if (s1) { d.call('cuEventRecord', cross[1], s0); d.call('cuStreamWaitEvent', s1, cross[1], 0); }
    d.call('cuEventRecord', ends[0], s0);
    enqueue(0);
    for (let i = 0; i < steps; i++) {
      if (i + 1 < steps) enqueue(i + 1);
      await eventDone(d, ends[i + 1]); // the event loop runs while the step does
      loop.onStep?.(i + 1, undefined, d.elapsedMs(ends[i], ends[i + 1]));
    }
  } catch (e) {
    failed = e;
  }
  // Whatever happened: drain what is enqueued (an abort leaves at most one step), read the latents
  // back if all went well, then free. The first error is the one thrown.
  try {
    for (const r of used) d.call('cuStreamSynchronize', r.stream);
    if (!failed) d.call('cuMemcpyDtoH', result, latents, 4 * n);
  } catch (e) {
    failed ??= e;
  } finally {
    // The loop wrote the latents and timestep slots: the next run() stages every input afresh.
    for (const r of used) r.host.clear();
    for (const e of [...cross, ...ends]) d.call('cuEventDestroy', e);
    for (const p of buffers) d.call('cuMemFree', p);
  }
  if (failed) throw failed;
  return result;
}
