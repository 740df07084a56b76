/**
 * loadModel: an artifact on the GPU, ready to run.
 *
 * Load, in order: open the device and check the artifact against it (runtime/gpu/artifact.ts,
 * nothing touches the GPU before that passes; weights.bin's part hashes, where the manifest has
 * them, are checked on worker threads meanwhile and joined before the model is returned:
 * weights-check.ts); load every cubin (cuModuleLoadData) and resolve the launches' kernels;
 * allocate the arena, the weights, the cuBLASLt workspace and any converted biases with plain
 * cuMemAlloc; upload weights.bin streaming (64 MiB chunks through two page-locked buffers, a
 * progress line) or draw synthetic weights on the GPU; plan every GEMM (cuBLASLt descriptor with its pointers, the
 * heuristic's algorithm cached per shape and types).
 *
 * run(inputs): copy the inputs into their arena slots, replay the launch plan, copy the outputs
 * back. The plan is captured into one CUDA graph on the first run (the artifact is specialised to
 * one input shape, so one graph) and replayed after that; `graphs: false` enqueues launch by launch.
 * time(n) replays the graph n times between events (median, min, mean in ms).
 *
 * denoise(loop) (artifacts whose support unit has the Euler kernels): a whole flow-matching loop on
 * the device (runtime/executor/types.ts DenoiseLoop): float32 latents and every step's timestep
 * input uploaded once; per step the timestep copied into its slot, the graph launched (per CFG set
 * on its own replica and stream), then one support kernel (runtime/gpu/support.cu: Euler, or true
 * CFG + Euler reading both replicas' outputs) updates the latents and writes the next step's
 * latents input into every replica's slot. The host enqueues one step ahead and waits only for
 * the step before (onStep, aborts); the same latents as the host loop, bit for bit.
 *
 * runMany(list) with `replicas: N` (N arenas, cuBLASLt workspaces, streams and CUDA graphs over one
 * copy of the weights): each input set on its own replica, all launched before any is awaited, so
 * one run's memory-bound kernels and tails overlap the other's GEMMs. Qwen-Image's two CFG passes:
 * bit-identical images, end to end 1667-1683 against 1716-1741 ms on an H100 (bench/RESULTS.md).
 *
 * Modules of one network (a transformer's batch-2, text-length and image-size modules) run one at a
 * time, so they share their activation memory: the first allocates arenas as large as the largest
 * of them needs (`arenaBytes`) and the cuBLASLt workspaces, the others run in those (`arenaFrom`;
 * ArenaShare), and their step memo has one budget. A run of any of
 * them refuses to start while another's is in flight, and an input staged by one is staged again
 * after another ran (ArenaShare.holders).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { fail } from '../../compiler/errors.ts';
import { type DType, bytesFor, f32ToBf16 } from '../../compiler/ir/dtype.ts';
import { bitsOf, bitsTensor, decodeBf16, f32ToBf16Array } from '../executor/bf16.ts';
import { Tensor, tensorFromBytes } from '../../compiler/ir/tensor.ts';
import { type Section, type WeightEntry, unsharedWeight } from '../../compiler/weights-file.ts';
import { type Artifact, type Launch, checkInputs, openArtifact, parseType, typeBytes } from './artifact.ts';
import { CublasLt, type Gemm, type GemmSpec, type TuneResult, WORKSPACE_BYTES, specFor } from './cublaslt.ts';
import {
  type Device, type DevicePtr, type Driver, type Handle, KernelParams, alignedBuffer, alloc, encodeTensorMap, captureGraph, createEvent, createStream,
  getFunction, launch, loadModule, memInfo, openDevice, streamDone,
} from './cuda.ts';
import { type DeviceLayout, FILL_KIND, deviceLayout, hostCopies, isSynthetic, syntheticFills } from './weights.ts';
import type { DenoiseLoop, RunOptions } from '../executor/types.ts';
import { type DeviceSource, type OutputLedger, claimReplica, deviceOutput, deviceSourceOf, replicaSource } from './device-output.ts';
import { readTuning, tuningCachePath, writeTuning } from './tuning-cache.ts';
import { HAND_OFF, checkWeightParts } from './weights-check.ts';
import type { HandedChunks } from '../../compiler/hash.ts';
import { type LoopDevice, SUPPORT_KIND, deviceDenoise } from './denoise.ts';
import { MemoCache, type Step, memoSteps, stageLayout } from './memo.ts';

/** The step memo's default device memory (LoadOptions.memoBytes). */
const MEMO_BYTES = 512 * 2 ** 20;

export interface LoadOptions {
  /** Fill every learned weight on the GPU from this seed instead of weights.bin. */
  syntheticWeights?: number;
  /** Capture the plan into a CUDA graph (default true). */
  graphs?: boolean;
  /** Launch by launch, each named to this log before it runs and awaited after it (no CUDA graph): finds the launch that hangs or faults. */
  trace?: (line: string) => void;
  /** false: never time the cuBLASLt algorithms at load; else they are timed where $DC_GEMM_TUNING asks (tuning-cache.ts, cublaslt.ts tune()). */
  gemmTuning?: boolean;
  /**
   * Independent copies of the activation memory, each with its own stream, cuBLASLt workspace and
   * CUDA graph over the one copy of the weights (default 1): runMany runs that many input sets at
   * once (Qwen-Image's two CFG passes), letting one run's memory-bound kernels and tails overlap the
   * other's GEMMs.
   */
  replicas?: number;
  /**
   * Return bfloat16 outputs undecoded, as bits tensors (runtime/executor/bf16.ts; the pipelines'
   * executor asks for this, and reads them through valuesOf / bitsOf); default: decoded float32 storage.
   */
  bf16Bits?: boolean;
  /** Progress and status lines (default: stderr). */
  log?: (line: string) => void;
  device?: number;
  /**
   * Device memory for the step memo (runtime/gpu/memo.ts: the values of the launches that depend only
   * on a step's timestep and guidance, kept per key for later steps and requests with those inputs);
   * default $DC_STEP_MEMO_MB MiB, else 512 MiB; 0 turns it off.
   */
  memoBytes?: number;
  /**
   * A loaded model of the same network whose device weights this one reads instead of its own (the
   * transformer compiled at batch 2 for true CFG beside its batch-1 module: one copy of the weights on
   * the GPU; the transformer for a shorter text likewise). Every entry compiled as `shared` must match
   * one of the donor's (name, kind, type, shape, provenance); only the other entries (small constants:
   * tables, masks) get memory of their own. The donor must stay open while this model is.
   */
  weightsFrom?: WeightsDonor;
  /** Bytes of activation memory a replica at least (default the manifest's): the largest arena of the models that will run in this one's (arenaFrom). */
  arenaBytes?: number;
  /**
   * A loaded model whose activation arenas this one runs in instead of allocating its own (modules
   * of one network, which never run at once): they must hold this model's arena, one a replica. The
   * lender must stay open while this model is.
   */
  arenaFrom?: ArenaLender;
}

/**
 * Activation memory one model lends others (LoadOptions.arenaFrom): an arena and a cuBLASLt workspace a replica. Runs of the
 * models in it never overlap (`busy`), and each replica's arena remembers whose staged inputs it
 * holds (`holders`: a HostIo, or null after anything else wrote there), so that a model's host side
 * stages its inputs again after another model ran there.
 */
export interface ArenaShare extends OutputLedger {
  readonly bytes: number;
  readonly arenas: readonly DevicePtr[];
  /** A cuBLASLt workspace a replica (WORKSPACE_BYTES), shared as the arenas are. */
  readonly workspaces: readonly DevicePtr[];
  readonly holders: (HostIo | null)[];
  /** The model whose run is in flight (started and not finished, a denoising loop, an RGB8 decode), or null. */
  busy: string | null;
  /** The step memo's entries of every model in this memory, within one budget (made by the first model with a memo plan; the lender frees it). */
  memo: MemoCache | null;
}
/** What a model lends others that run in its activation memory (LoadOptions.arenaFrom): a Model is one. */
export interface ArenaLender { readonly arenaShare: ArenaShare }

/** What a model lends another that shares its device weights (LoadOptions.weightsFrom): a Model is one. */
export interface WeightsDonor {
  readonly artifact: Artifact;
  /** Loaded with synthetic weights (a borrower must be too: its label would lie otherwise). */
  readonly synthetic: boolean;
  /** Device address of one section of a weight entry, undefined if the entry is not the donor's. */
  weightSection(entry: string, section: string): DevicePtr | undefined;
}

/** start()'s second half: waits for the runs and collects their outputs; settled() first lets Node's event loop run while they do. */
export type Finish = (() => Record<string, Tensor>[]) & { settled(): Promise<void> };

export interface Model extends WeightsDonor, ArenaLender {
  readonly description: string;
  readonly artifact: Artifact;
  readonly device: Device;
  /** True when the weights are synthetic (every output must say so). */
  readonly synthetic: boolean;
  readonly memory: { arenaBytes: number; weightBytes: number; workspaceBytes: number; deviceUsedBytes: number };
  readonly loadSeconds: number;
  /** Per GEMM shape, the heuristic's first algorithm against the one kept (empty without tuning). */
  readonly gemmTuning: TuneResult[];
  run(inputs: Record<string, Tensor>): Record<string, Tensor>;
  /** Runs each input set on its own replica, all at once (at most `replicas` sets); outputs in the same order. */
  runMany(list: Record<string, Tensor>[]): Record<string, Tensor>[];
  /**
   * runMany in two halves: copies the inputs in and launches (returns at once), then finish() waits
   * and copies the outputs out. Between the two the host is free (the GPU executor draws a
   * request's noise while the text encoder runs); nothing else may run this model in between.
   */
  start(list: Record<string, Tensor>[], options?: RunOptions): Finish;
  /** The denoising loop on the device; absent when the artifact's support unit predates its kernels. Nothing else may run this model until it settles. */
  denoise?(loop: DenoiseLoop): Promise<Float32Array>;
  /**
   * run() for an image-producing graph (one output [1, 3, H, W] or [1, 3, 1, H, W]): the image turned
   * into interleaved RGB8 on the device (support.cu dc_rgb8, runtime/pipeline/image.ts rgb8Of's
   * bytes), H*W*3 bytes copied back instead of the image. Absent for other graphs and older artifacts.
   */
  rgb8?(given: Record<string, Tensor>): Promise<Uint8Array>;
  readonly replicas: number;
  /** Whether its steps run with a step memo (runtime/gpu/memo.ts: the artifact has a memo plan and the budget is not 0). */
  readonly stepMemo: boolean;
  /** One launch-by-launch pass with an event between launches: each launch's own time (ms), in plan order. */
  profile(): { node: string; kind: string; label: string; ms: number }[];
  /** Runs the plan n times between events: the captured graph (needs one run() first) or launch by launch. */
  time(n: number, graph: boolean): { medianMs: number; minMs: number; meanMs: number };
  /**
   * With a step memo (runtime/gpu/memo.ts; needs one run() first): fills a memo entry from the last
   * run's inputs, then times n restoring steps (the entry copied in, then the graph without the
   * memoized launches) alternating with n full steps (`full`), and whether every restoring step's
   * outputs equal the full step's bytes (a first one with the arena poisoned but for the inputs).
   * Null without a memo or where one entry does not fit its budget.
   */
  timeMemo(n: number): { medianMs: number; minMs: number; meanMs: number; full: { medianMs: number; minMs: number; meanMs: number }; launchesSkipped: number; identical: boolean } | null;
  close(): void;
}

const CHUNK = 64 << 20;

/** Median, minimum and mean of timings (ms). */
function timingStats(ms: readonly number[]): { medianMs: number; minMs: number; meanMs: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(ms.length / 2)], minMs: sorted[0], meanMs: ms.reduce((a, b) => a + b, 0) / ms.length };
}

export { f32ToBf16Array };

/** bfloat16 bytes -> a bfloat16 Tensor (values decoded into float32 storage, as compiler/ir/tensor.ts keeps them). */
export function bf16Tensor(shape: readonly number[], bytes: Uint8Array): Tensor {
  return new Tensor('bfloat16', shape, decodeBf16(bitsIn(shape, bytes)));
}

/** The bfloat16 bits in `bytes` for `shape` (a view when 2-byte aligned, else a copy). */
function bitsIn(shape: readonly number[], bytes: Uint8Array): Uint16Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength < 2 * n) fail('bfloat16 output', `${2 * n} bytes for [${shape}]`, `${bytes.byteLength}`);
  return bytes.byteOffset % 2 === 0 ? new Uint16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(Uint8Array.from(bytes.subarray(0, 2 * n)).buffer);
}

/**
 * A tensor's bytes as the device stores `dtype`: float32 values convert to bfloat16 (nearest
 * even); a bits tensor (runtime/executor/bf16.ts: a module's bfloat16 output kept undecoded) gives
 * its own bits — the same bytes.
 */
export function deviceBytes(t: Tensor, dtype: DType): Uint8Array {
  if (dtype === 'bfloat16') {
    const bits = bitsOf(t);
    return new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength);
  }
  const d = t.data as Uint8Array;
  if (t.dtype !== dtype) fail(`input of dtype ${t.dtype}`, dtype, t.dtype);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** What run() needs of the device: async copies in (the bytes stay alive until collect), the plan, copies out. */
export interface DeviceCopies {
  toDevice(offset: number, bytes: Uint8Array): void;
  /** Runs the plan and waits for it (and for the copies in). */
  execute(): void;
  fromDevice(offset: number, into: Uint8Array): void;
  /** Before the first write of a run into the activation memory (its staging): what was left there by earlier runs is no longer valid. */
  claim?(): void;
  /** Copies an output left on the device into an input slot, on the device; false where it cannot (another device). */
  copyFrom?(offset: number, source: DeviceSource): boolean;
  /** The source of an output slot's values as they are now (collect with onDevice). */
  source?(offset: number, bytes: number): DeviceSource;
}

export interface HostIo {
  run(given: Record<string, Tensor>): Record<string, Tensor>;
  /** run() in two halves, for runs on several streams at once: copy the inputs in, then (after the plan ran) copy the outputs out. */
  stage(given: Record<string, Tensor>, except?: ReadonlySet<string>): void;
  /** The outputs, copied to the host; or with `onDevice` (where the device offers sources) left in their slots until read (./device-output.ts). */
  collect(options?: { onDevice?: boolean }): Record<string, Tensor>;
  /** The copies in have completed (the caller waited) and no output is wanted: drop the staged bytes. */
  settle(): void;
  clear(): void;
}

/**
 * The host side of run(), with the device behind `dev` (so it is tested and measured without a
 * GPU: bench/host-overhead.ts). Staging: a Tensor object's device bytes are derived once (callers
 * do not change a Tensor after passing it), and an input whose slot still holds the same Tensor's
 * bytes is not copied again — only where no launch writes into that slot (`intact`, intactInputs;
 * the memory plan keeps graph inputs live to the end, so for current artifacts that is every input).
 * Outputs: bfloat16 ones decoded into float32 storage, or with `bf16Bits` returned undecoded as
 * bits tensors (runtime/executor/bf16.ts) for callers that read them through valuesOf / bitsOf;
 * collect's `onDevice` leaves bits and float32 outputs in their slots (./device-output.ts), and an
 * input that is such an output, still valid and of the slot's dtype, is copied on the device.
 */
export function hostIo(
  io: Artifact['manifest']['io'], intact: ReadonlySet<string>, dev: DeviceCopies,
  options: { bf16Bits?: boolean; arena?: { holders: (HostIo | null)[]; replica: number } } = {},
): HostIo {
  const stagedBytes = new WeakMap<Tensor, Uint8Array>();
  const uploaded = new Map<string, Tensor>();
  const staged: Uint8Array[] = []; // alive until the copies in have completed (collect)
  const io_: HostIo = {
    run(given) {
      io_.stage(given);
      dev.execute();
      return io_.collect();
    },
    stage(given, except) {
      // An arena shared with other models (ArenaShare): whatever another wrote there since this one staged is not ours.
      const arena = options.arena;
      if (arena && arena.holders[arena.replica] !== io_) {
        uploaded.clear();
        arena.holders[arena.replica] = io_;
      }
      // Outputs left on the device, decided before the claim (an output of a model sharing this memory is still there until the plan runs).
      const onDevice = new Map<string, DeviceSource>();
      for (const spec of io.inputs) {
        if (except?.has(spec.name)) continue;
        const src = dev.copyFrom && deviceSourceOf(given[spec.name]);
        if (src && src.valid() && given[spec.name].dtype === spec.dtype && src.bytes === spec.bytes) onDevice.set(spec.name, src);
      }
      dev.claim?.();
      for (const spec of io.inputs) {
        if (except?.has(spec.name)) continue;
        const t = given[spec.name];
        if (intact.has(spec.name) && uploaded.get(spec.name) === t) continue;
        const src = onDevice.get(spec.name);
        if (src && dev.copyFrom!(spec.offset, src)) {
          uploaded.set(spec.name, t);
          continue;
        }
        let bytes = stagedBytes.get(t);
        if (!bytes) stagedBytes.set(t, (bytes = deviceBytes(t, spec.dtype)));
        staged.push(bytes);
        dev.toDevice(spec.offset, bytes);
        uploaded.set(spec.name, t);
      }
    },
    collect(how) {
      staged.length = 0;
      const out: Record<string, Tensor> = {};
      for (const o of io.outputs) {
        // Left on the device: bits tensors and float32, whose storage is the slot's bytes (allocated and filled when read).
        const kept = how?.onDevice && dev.source && (o.dtype === 'float32' || (o.dtype === 'bfloat16' && options.bf16Bits));
        if (kept) {
          const count = o.shape.reduce((a, b) => a * b, 1);
          const allocate = () => { const b = Buffer.allocUnsafeSlow(o.bytes).buffer; return o.dtype === 'bfloat16' ? new Uint16Array(b, 0, count) : new Float32Array(b, 0, count); };
          out[o.name] = deviceOutput(o.dtype, o.shape, allocate, dev.source!(o.offset, o.bytes), (into) => dev.fromDevice(o.offset, into), `output '${o.name}'`);
          continue;
        }
        const buf = Buffer.allocUnsafeSlow(o.bytes); // its own ArrayBuffer, every byte written by the copy
        dev.fromDevice(o.offset, buf);
        out[o.name] = o.dtype !== 'bfloat16' ? tensorFromBytes(o.dtype, o.shape, buf)
          : options.bf16Bits ? bitsTensor(o.shape, bitsIn(o.shape, buf)) : bf16Tensor(o.shape, buf);
      }
      return out;
    },
    settle() { staged.length = 0; },
    clear() { uploaded.clear(); staged.length = 0; },
  };
  return io_;
}

function progress(log: (l: string) => void, what: string, total: number) {
  const start = performance.now();
  let shown = -1;
  return (done: number) => {
    const pct = total ? Math.floor((100 * done) / total) : 100;
    if (pct < shown + 10 && done < total) return;
    shown = pct;
    const s = (performance.now() - start) / 1000;
    log(`${what}: ${(done / 1e9).toFixed(2)} / ${(total / 1e9).toFixed(2)} GB (${pct}%), ${s > 0 ? (done / 1e9 / s).toFixed(2) : '-'} GB/s`);
  };
}

/**
 * Streams weights.bin to the device. Read here (no `chunks`): 64 MiB at a time through two host
 * buffers page-locked with cuMemHostRegister; each chunk's copy is a DMA on `stream` that runs while
 * the next chunk is read, and a buffer is read into again once its last copy is done (its event).
 * From `chunks` (weights-check.ts HAND_OFF): the part-hashing threads read the file into their
 * slots of shared memory, page-locked here as one range; each slot is copied as it fills and given
 * back to its thread once its copy is done, so the file is read once, on every hashing thread.
 * Where the driver refuses to page-lock (logged) the copies are staged by the driver, as pageable
 * memory is. Returns the bytes copied: fewer than `bytes` only where a reading thread stopped
 * (the part check's join() says why).
 */
export function uploadFile(d: Driver, path: string, base: DevicePtr, bytes: number, stream: Handle, log: (l: string) => void, chunks?: HandedChunks): number {
  const report = progress(log, 'weights', bytes);
  const notLocked = (rc: number) => log(`weights: host buffers not page-locked (cuMemHostRegister: ${d.describe(rc)}); the driver stages the copies`);
  if (chunks) {
    const locked = d.rc('cuMemHostRegister', chunks.memory, chunks.memory.length, 0);
    if (locked !== 0) notLocked(locked);
    const copied = chunks.slots.map(() => createEvent(d));
    const inFlight: number[] = []; // slots whose copies are queued, in stream order
    let done = 0;
    try {
      while (done < bytes) {
        const ended = chunks.ended(); // before take(): a thread publishes its last chunk before it ends
        const ready = chunks.take();
        for (const c of ready) {
          if (c.pos + c.n > bytes) fail(path, `${bytes} bytes`, `a chunk at ${c.pos} of ${c.n} bytes`);
          d.call('cuMemcpyHtoDAsync', base + c.pos, chunks.slots[c.slot], c.n, stream);
          d.call('cuEventRecord', copied[c.slot], stream);
          inFlight.push(c.slot);
          done += c.n;
        }
        if (ready.length) report(done);
        // Copies end in stream order: give back the slots whose copies are done; wait for the oldest where nothing else moved.
        while (inFlight.length && d.rc('cuEventQuery', copied[inFlight[0]]) === 0) chunks.release(inFlight.shift()!);
        if (ready.length) continue;
        if (inFlight.length) {
          d.call('cuEventSynchronize', copied[inFlight[0]]);
          chunks.release(inFlight.shift()!);
        } else if (ended) break; // a thread stopped short: its reason is the part check's
        else chunks.wait(50);
      }
    } catch (e) {
      chunks.abort();
      throw e;
    } finally {
      d.rc('cuStreamSynchronize', stream); // the copies in flight end before their memory is unlocked
      if (locked === 0) d.rc('cuMemHostUnregister', chunks.memory);
      for (const e of copied) d.rc('cuEventDestroy', e);
    }
    return done;
  }
  const size = Math.ceil(Math.min(CHUNK, Math.max(bytes, 1)) / 4096) * 4096; // whole pages, as page-locking takes them
  const buffers = [alignedBuffer(size, 4096), alignedBuffer(size, 4096)];
  const locked = buffers.map((b) => d.rc('cuMemHostRegister', b, b.length, 0));
  if (locked.some((rc) => rc !== 0)) notLocked(locked.find((rc) => rc !== 0)!);
  const copied = buffers.map(() => createEvent(d));
  const issued = [false, false];
  const fd = openSync(path, 'r');
  try {
    for (let pos = 0, k = 0; pos < bytes; k ^= 1) {
      if (issued[k]) d.call('cuEventSynchronize', copied[k]);
      const n = readSync(fd, buffers[k], 0, Math.min(size, bytes - pos), pos);
      if (n === 0) fail(path, `${bytes} bytes`, `the file ends after ${pos} (changed while loading?)`);
      d.call('cuMemcpyHtoDAsync', base + pos, buffers[k], n, stream);
      d.call('cuEventRecord', copied[k], stream);
      issued[k] = true;
      pos += n;
      report(pos);
    }
  } finally {
    closeSync(fd);
    d.rc('cuStreamSynchronize', stream); // the copies in flight end before their buffers go
    buffers.forEach((b, i) => { if (locked[i] === 0) d.rc('cuMemHostUnregister', b); });
    for (const e of copied) d.rc('cuEventDestroy', e);
  }
  return bytes;
}

/**
 * The entries a model reads from `donor` (LoadOptions.weightsFrom): those compiled as `shared`
 * (weights-file.ts), each required to match a donor entry (name, kind, type, shape, scales, layout,
 * provenance); a module with shared entries cannot load without a donor. Its other entries, learned
 * ones the donor lacks included (a table sliced for a shorter text), are its own.
 */
function sharedEntries(tensors: readonly WeightEntry[], donor: WeightsDonor | undefined, dir: string): Set<string> {
  const names = new Set<string>();
  if (!donor) {
    const missing = tensors.find((t) => t.shared);
    if (missing) fail(`${dir}: weight '${missing.name}'`, 'its bytes (this module was compiled to run over another module\'s weights: load it with that module as weightsFrom)', 'no module to share them with');
    return names;
  }
  const bad = unsharedWeight(tensors, donor.artifact.manifest.weights.tensors);
  if (bad) fail(`${dir}: weight '${bad.entry.name}'`, `the same entry in the model it shares weights with (${donor.artifact.dir})`, bad.other ? 'a different entry (kind, type, shape or provenance)' : 'no such entry');
  for (const t of tensors) if (t.shared) names.add(t.name);
  return names;
}

/** A raw entry's bytes on the host (from weights.bin or inline). */
function hostBytes(t: WeightEntry, file: string | null): Uint8Array {
  return t.data ? Buffer.from(t.data, 'base64') : fileRange(file!, t.sections.data);
}

/** One section's bytes of weights.bin. */
function fileRange(file: string, s: Section): Uint8Array {
  const buf = Buffer.alloc(s.length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, s.length, s.offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** Inputs whose arena bytes no launch argument overlaps (other than the input itself): they survive a run intact. */
export function intactInputs(m: Artifact['manifest']): Set<string> {
  const out = new Set(m.io.inputs.map((i) => i.name));
  for (const l of m.launchPlan) {
    for (const a of l.args) {
      if (a.where !== 'arena' || a.offset === undefined) continue;
      const end = a.offset + typeBytes(parseType(m.values[a.value], `value '${a.value}'`));
      for (const i of m.io.inputs) if (a.offset < i.offset + i.bytes && i.offset < end) out.delete(i.name);
    }
  }
  return out;
}

export function loadModel(dir: string, options: LoadOptions = {}): Model {
  const t0 = performance.now();
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const synthetic = options.syntheticWeights !== undefined;
  const device = openDevice(options.device ?? 0);
  const d = device.driver;
  const artifact = openArtifact(dir, { capability: device.capability, synthetic, partsLater: true });
  const m = artifact.manifest;
  if (synthetic && !m.support) fail(`${dir}/manifest.json`, 'the runtime support kernels (recompile: npx compile builds them)', 'none');
  const before = memInfo(d);
  const label = synthetic ? ` [SYNTHETIC weights, seed ${options.syntheticWeights}]` : '';
  log(`device: ${device.name} (compute ${device.capability.join('.')}, ${device.multiprocessors} SMs, driver ${device.driverVersion}); artifact ${m.model} ${m.target} ${m.precision}${label}`);

  // Kernels: each replica loads the units for itself, so that a kernel's module-scope state (the
  // attention's last-wave slots and counts, compiler/codegen/attention.ts tailPieces) is its own while
  // replicas run at once; replica 0's modules also hold the support kernels.
  const loaded: Map<string, Handle>[] = [];
  const unitOf = new Map(m.kernels.map((k) => [k.name, k.unit]));
  const functionsOfModules = () => {
    const modules = new Map<string, Handle>();
    for (const [unit, image] of artifact.cubins) modules.set(unit, loadModule(d, image, unit));
    loaded.push(modules);
    const functions = new Map<string, Handle>();
    return (name: string, unit: string, shared: number) => {
      const key = `${unit}/${name}/${shared}`;
      let f = functions.get(key);
      if (!f) functions.set(key, (f = getFunction(d, modules.get(unit)!, name, shared)));
      return f;
    };
  };
  const fnFor = functionsOfModules();

  // GEMM specs first (pure checks), so a bad plan fails before any allocation.
  const gemmSpecs = new Map<Launch, GemmSpec>();
  for (const l of m.launchPlan) if (l.kind === 'gemm') gemmSpecs.set(l, specFor(l, m.values, (v) => artifact.weightByValue.get(v)));
  const fanIn = new Map<string, number>();
  // Fan-in of the weights GEMMs read (synthetic draws scale by it); an activation B (spec.act) is none.
  for (const s of gemmSpecs.values()) if (!s.act) fanIn.set(s.w, s.k);

  // Memory: arena, weights, workspace, converted biases.
  const allocations: DevicePtr[] = [];
  const take = (bytes: number, what: string) => { const p = alloc(d, bytes, what); allocations.push(p); return p; };
  const fileBytes = artifact.weightsFile ? (m.weights as { bytes: number }).bytes : null;
  if (options.weightsFrom && options.weightsFrom.synthetic !== synthetic) {
    fail(`${dir}: weightsFrom ${options.weightsFrom.artifact.dir}`, `a model loaded with ${synthetic ? 'synthetic' : 'real'} weights, as this one`, options.weightsFrom.synthetic ? 'synthetic weights' : 'real weights');
  }
  const shared = sharedEntries(m.weights.tensors, options.weightsFrom, dir);
  const own = shared.size ? m.weights.tensors.filter((t) => !shared.has(t.name)) : m.weights.tensors;
  // Sharing: only the own entries get device memory, placed apart from the file's layout.
  const layout: DeviceLayout = deviceLayout(own, shared.size ? null : fileBytes);
  const replicaCount = options.replicas ?? 1;
  if (!(Number.isInteger(replicaCount) && replicaCount >= 1 && replicaCount <= 8)) fail('replicas', 'an integer from 1 to 8', String(options.replicas));
  const weights = take(Math.max(layout.bytes, 256), 'weights'); // a borrower may own no entry at all: never a zero-byte allocation
  // Activation memory: borrowed (arenaFrom) or allocated here, one arena a replica, at least as large as asked (arenaBytes).
  const lent = options.arenaFrom?.arenaShare;
  if (lent && lent.bytes < m.memory.arenaBytes) fail(`${dir}: arenaFrom`, `arenas of at least ${m.memory.arenaBytes} bytes (this model's)`, `${lent.bytes}`);
  if (lent && lent.arenas.length < replicaCount) fail(`${dir}: arenaFrom`, `at least ${replicaCount} arenas (one a replica)`, `${lent.arenas.length}`);
  if (lent?.busy) fail(`${dir}: arenaFrom`, 'an arena with no run in flight (loading times GEMMs there)', `a run of ${lent.busy} in flight`);
  if (options.arenaBytes !== undefined && !(Number.isSafeInteger(options.arenaBytes) && options.arenaBytes >= 0)) fail('arenaBytes', 'a byte count', String(options.arenaBytes));
  const arenaBytes = Math.max(m.memory.arenaBytes, options.arenaBytes ?? 0);
  const arenaShare: ArenaShare = lent ?? {
    bytes: arenaBytes, holders: Array.from({ length: replicaCount }, () => null), busy: null, memo: null,
    generation: Array.from({ length: replicaCount }, () => 0), reads: Array.from({ length: replicaCount }, () => []),
    arenas: Array.from({ length: replicaCount }, (_, i) => take(arenaBytes, `activation arena${i ? ` (replica ${i})` : ''}`)),
    workspaces: Array.from({ length: replicaCount }, (_, i) => take(WORKSPACE_BYTES, `cuBLASLt workspace${i ? ` (replica ${i})` : ''}`)),
  };
  const stream = createStream(d); // replica 0's; the loads below run on it
  // Before anything writes replica r's activation memory (every run, loop, timing): outputs left there are no longer valid (device-output.ts).
  const claim = (r: number, s: Handle) => claimReplica(d, arenaShare, r, s);

  // Real bytes: the whole file, or (synthetic) only the weights that are not drawn (constants, tables).
  // weights.bin's part hashes, checked on worker threads, joined before the model is returned; where the
  // whole file goes up, those threads' reads are the upload's (HAND_OFF: the file read once).
  const wholeFile = !!artifact.weightsFile && !synthetic && !shared.size;
  const partsCheck = artifact.uncheckedParts
    ? { started: performance.now(), ...checkWeightParts(artifact.weightsFile!, artifact.uncheckedParts, fileBytes!, undefined, wholeFile ? HAND_OFF : undefined) }
    : null;
  if (wholeFile) {
    const copied = uploadFile(d, artifact.weightsFile!, weights, layout.bytes, stream, log, partsCheck?.chunks);
    if (copied < layout.bytes) {
      partsCheck!.join(); // throws the reading thread's reason (the file ends, cannot be read), naming its part
      fail(artifact.weightsFile!, `${layout.bytes} bytes`, `${copied} read`);
    }
  } else {
    for (const c of hostCopies(own, layout, synthetic, fileBytes)) {
      const bytes = c.from === 'inline' ? Buffer.from(c.entry.data!, 'base64') : fileRange(artifact.weightsFile!, c.from);
      d.call('cuMemcpyHtoD', weights + c.to.offset, bytes, bytes.length);
    }
  }
  const fill = synthetic ? fnFor(m.support!.fill, m.support!.unit, 0) : null;
  const enqueueFill = (ptr: DevicePtr, count: number, kind: number, seed: number, scale: number, offset0: number) => {
    const p = new KernelParams([{ ptr }, { i64: count }, { i32: kind }, { u32: seed }, { f32: scale }, { f32: offset0 }]);
    launch(d, fill!, Math.max(1, Math.min(Math.ceil(count / 256), device.multiprocessors * 16)), 256, 0, stream, p);
  };
  if (synthetic) {
    // Seeded by name: a borrower's own learned entries (a RoPE table sliced for a shorter text) are
    // drawn as the donor's entries of the same name, element i alike, so the rows they share agree.
    const fills = syntheticFills(own, layout, options.syntheticWeights!, fileBytes, (n) => fanIn.get(n));
    for (const f of fills) enqueueFill(weights + f.offset, f.count, f.kind, f.seed, f.scale, f.offset0);
    d.call('cuStreamSynchronize', stream);
    log(`weights: ${fills.length} sections drawn on the GPU (synthetic, seed ${options.syntheticWeights}), ${(layout.bytes / 1e9).toFixed(2)} GB`);
  }

  // Pointers (an arena argument: into the replica's own arena).
  const inputs = new Map(m.io.inputs.map((i) => [i.name, i]));
  const weightPtr = (value: string): DevicePtr => {
    const t = artifact.weightByValue.get(value)!;
    const name = t.kind === 'raw' ? 'data' : value === t.scale ? 'scales' : 'codes';
    if (shared.has(t.name)) return options.weightsFrom!.weightSection(t.name, name) ?? fail(`weight '${value}'`, `a '${name}' section in the shared model`, 'none');
    const section = layout.sections.get(t.name)![name];
    if (!section) fail(`weight '${value}'`, 'a weight with device bytes', `a ${t.kind} entry without that section`);
    return weights + section.offset;
  };
  const ptrIn = (arena: DevicePtr) => (l: Launch, i: number): DevicePtr => {
    const a = l.args[i];
    if (a.where === 'arena') return arena + a.offset!;
    if (a.where === 'input') return arena + inputs.get(a.value)!.offset;
    return weightPtr(a.value);
  };

  // Biases the GEMM reads in another type than stored (fp8 GEMMs take bf16): converted once.
  const converted = new Map<string, DevicePtr>();
  const convertedBias = (s: GemmSpec, l: Launch): DevicePtr => {
    let p = converted.get(s.bias!);
    if (p !== undefined) return p;
    const t = artifact.weightByValue.get(s.bias!)!;
    const count = t.shape.reduce((a, b) => a * b, 1);
    p = take(bytesFor(s.biasType!, count), `bias '${s.bias}' as ${s.biasType}`);
    if (s.biasType !== 'bfloat16' || s.biasStoredType !== 'float32') fail(`GEMM '${l.node}'`, 'a float32 bias to convert to bfloat16', `${s.biasStoredType} -> ${s.biasType}`);
    if (synthetic && isSynthetic(t, fileBytes)) {
      enqueueFill(p, count, FILL_KIND.bfloat16!, 0x0b1a5, 0.02, 0);
    } else {
      const f32 = new Float32Array(Uint8Array.from(hostBytes(t, artifact.weightsFile)).buffer);
      const bf = Uint16Array.from(f32, f32ToBf16);
      d.call('cuMemcpyHtoD', p, bf, bf.byteLength);
    }
    converted.set(s.bias!, p);
    return p;
  };

  // Each replica: its arena, cuBLASLt workspace and stream, the launch plan as enqueue closures
  // bound to them, its CUDA graph (captured on its first run) and its host-side staging.
  const lt = new CublasLt();
  const useGraphs = options.graphs !== false && !options.trace;
  // Tracing: each launch named before it is enqueued and awaited after, so a hang or a fault names its launch.
  const traced = (list: ((s: Handle) => void)[], log: (line: string) => void) => list.map((step, i) => (s: Handle) => {
    const l = m.launchPlan[i];
    log(`launch ${i + 1}/${list.length} '${l.node}' ${l.kind === 'kernel' ? `kernel ${l.kernel}` : l.kind}`);
    step(s);
    d.call('cuStreamSynchronize', s);
  });
  const intact = intactInputs(m);
  interface Replica {
    stream: Handle; arena: DevicePtr; steps: ((s: Handle) => void)[]; gemms: Gemm[]; graph: { exec: Handle; graph: Handle } | null; host: HostIo;
    /** The step memo's filling and restoring lists, their graphs (captured on first use) and the stage they save into and restore from. */
    memo: { stage: DevicePtr; fill: Step[]; hit: Step[]; graphs: { fill?: { exec: Handle; graph: Handle }; hit?: { exec: Handle; graph: Handle } } } | null;
  }
  const memoBytes = options.memoBytes ?? (process.env.DC_STEP_MEMO_MB !== undefined ? Number(process.env.DC_STEP_MEMO_MB) * 2 ** 20 : MEMO_BYTES);
  if (!(memoBytes >= 0)) fail('DC_STEP_MEMO_MB', 'a number of MiB (0: no step memo)', String(process.env.DC_STEP_MEMO_MB));
  const memoPlan = m.memo && memoBytes > 0 && !options.trace ? m.memo : undefined;
  const stageBytes = memoPlan ? stageLayout(memoPlan).bytes : 0;
  const memoCache = memoPlan ? (arenaShare.memo ??= new MemoCache(d, memoBytes)) : null;
  // A key of this model's (the models sharing the memo hold their own entries): replica, then the key inputs' bytes.
  const memoKey = (replica: number, key: string) => `${dir}\0${replica}|${key}`;
  // A memo list's CUDA graph, captured on first use.
  const memoGraph = (r: Replica, which: 'fill' | 'hit') => (r.memo!.graphs[which] ??= captureGraph(d, r.stream, () => { for (const step of r.memo![which]) step(r.stream); }));
  // A memo list on a stream: its graph, or launch by launch.
  const launchMemo = (r: Replica, which: 'fill' | 'hit') => {
    if (useGraphs) d.call('cuGraphLaunch', memoGraph(r, which).exec, r.stream);
    else for (const step of r.memo![which]) step(r.stream);
  };
  // One step of replica r under a memo key: the entry restored, or computed and saved.
  const memoStep = (r: Replica, key: string) => {
    const e = memoCache!.entry(key), bytes = stageBytes;
    if (e.filled) {
      d.call('cuMemcpyDtoDAsync', r.memo!.stage, e.ptr, bytes, r.stream);
      launchMemo(r, 'hit');
    } else {
      launchMemo(r, 'fill');
      d.call('cuMemcpyDtoDAsync', e.ptr, r.memo!.stage, bytes, r.stream);
      e.filled = true;
    }
  };
  const captured = (r: Replica) => (r.graph ??= captureGraph(d, r.stream, () => { for (const step of r.steps) step(r.stream); }));
  const launchOn = (r: Replica) => {
    if (useGraphs) d.call('cuGraphLaunch', captured(r).exec, r.stream);
    else for (const step of r.steps) step(r.stream);
  };
  const makeReplica = (index: number, rs: Handle): Replica => {
    const suffix = index ? ` (replica ${index})` : '';
    const arena = arenaShare.arenas[index], workspace = arenaShare.workspaces[index];
    const ptrOf = ptrIn(arena);
    const fnOf = index ? functionsOfModules() : fnFor;
    const gemms: Gemm[] = [];
    const steps: ((s: Handle) => void)[] = m.launchPlan.map((l) => {
      if (l.kind === 'kernel') {
        const fn = fnOf(l.kernel, unitOf.get(l.kernel)!, l.sharedBytes);
        // Tensor-map parameters (the own FP8 GEMM's operands) are encoded here, over this replica's addresses.
        const mapOf = new Map((l.maps ?? []).map((t) => [t.param, t]));
        const params = new KernelParams(l.args.map((_, i) => {
          const t = mapOf.get(i);
          return t ? { bytes: encodeTensorMap(d, ptrOf(l, i), t) } : { ptr: ptrOf(l, i) };
        }));
        return (s: Handle) => {
          try {
            launch(d, fn, l.grid, l.block, l.sharedBytes, s, params);
          } catch (e) {
            fail(`launch '${l.node}' (kernel ${l.kernel}, grid ${l.grid}, block ${l.block}, ${l.sharedBytes} bytes of dynamic shared memory)`, 'a launch the driver accepts', (e as Error).message);
          }
        };
      }
      if (l.kind === 'gemm') {
        const spec = gemmSpecs.get(l)!;
        const at = (v: string | undefined) => (v === undefined ? undefined : ptrOf(l, l.args.findIndex((a) => a.value === v)));
        const bias = spec.bias === undefined ? undefined : spec.biasType === spec.biasStoredType ? at(spec.bias) : convertedBias(spec, l);
        const g = lt.gemm(spec, { x: at(spec.x)!, w: at(spec.w)!, y: at(spec.y)!, xs: at(spec.xs), ws: at(spec.ws), bias }, workspace);
        gemms.push(g);
        return (s: Handle) => g.enqueue(s);
      }
      return fail(`launch '${l.node}'`, 'a kernel or GEMM', l.kind);
    });
    const stage = memoPlan ? take(stageBytes, `step memo stage${suffix}`) : 0;
    const r: Replica = {
      stream: rs, arena, steps: options.trace ? traced(steps, options.trace) : steps, gemms, graph: null, host: undefined as unknown as HostIo,
      memo: memoPlan ? { stage, ...memoSteps(d, memoPlan, steps, arena, stage), graphs: {} } : null,
    };
    r.host = hostIo(m.io, intact, {
      toDevice: (offset, bytes) => d.call('cuMemcpyHtoDAsync', arena + offset, bytes, bytes.length, rs),
      execute: () => { launchOn(r); d.call('cuStreamSynchronize', rs); },
      fromDevice: (offset, into) => d.call('cuMemcpyDtoH', into, arena + offset, into.length),
      claim: () => claim(index, rs),
      copyFrom: (offset, src) => {
        if (src.device !== device.ordinal) return false;
        d.call('cuMemcpyDtoDAsync', arena + offset, src.ptr, src.bytes, rs);
        const read = createEvent(d);
        d.call('cuEventRecord', read, rs);
        src.readBy(read);
        return true;
      },
      source: (offset, bytes) => replicaSource(arenaShare, index, device.ordinal, arena + offset, bytes, () => !closed),
    }, { bf16Bits: options.bf16Bits, arena: { holders: arenaShare.holders, replica: index } });
    return r;
  };
  const replicas: Replica[] = [];
  for (let i = 0; i < replicaCount; i++) replicas.push(makeReplica(i, i ? createStream(d) : stream));
  const [first] = replicas;
  const steps = first.steps, gemms = replicas.flatMap((r) => r.gemms);
  d.call('cuStreamSynchronize', stream);
  const events = [createEvent(d), createEvent(d)];
  // GEMM tuning runs GEMMs on the arena before any input is uploaded (every run uploads its inputs
  // first, and every GEMM output is rewritten by the run that reads it), so whatever the timings
  // leave there is never read. The operands are whatever the arena holds (often zeros): a
  // power-limited card may run those faster than real activations.
  // Only where $DC_GEMM_TUNING asks (tuning-cache.ts: else the heuristic's first algorithm, the same on every card of a kind).
  // Algorithms an earlier load on this device and cuBLASLt chose are kept: the same bytes across restarts.
  const cachePath = options.gemmTuning === false ? null : tuningCachePath();
  const scope = `${device.name} sm_${device.capability.join('')} cublasLt ${lt.version}`;
  if (cachePath !== null) arenaShare.generation.forEach((_, r) => claim(r, stream)); // the timings write the activation memory
  const gemmTuning = cachePath === null ? [] : lt.tune((run, reps) => {
    run(stream); // warm-up
    d.call('cuEventRecord', events[0], stream);
    for (let i = 0; i < reps; i++) run(stream);
    d.call('cuEventRecord', events[1], stream);
    d.call('cuEventSynchronize', events[1]);
    return d.elapsedMs(events[0], events[1]) / reps;
  }, cachePath ? readTuning(cachePath, scope) : new Map());
  arenaShare.holders.fill(null); // the tuning's GEMMs wrote there
  if (gemmTuning.length) {
    const timed = gemmTuning.filter((t) => !t.saved);
    const changed = timed.filter((t) => t.chosen !== 0).length;
    // t.gemms counts every replica's GEMMs; one run is one replica's.
    const saved = timed.reduce((a, t) => a + ((t.firstMs - t.bestMs) * t.gemms) / replicaCount, 0);
    log(`GEMM tuning: ${timed.length} shapes timed, ${changed} kept another algorithm than the heuristic's first, ${saved.toFixed(2)} ms less per run by those timings; ${gemmTuning.length - timed.length} kept from an earlier load${cachePath ? ` (${cachePath})` : ''}`);
    const failed = cachePath && writeTuning(cachePath, scope, new Map(timed.map((t) => [t.key, t.algo])));
    if (failed) log(`GEMM tuning: not saved (${failed}); the next load times again`);
  } else if (lt.planned) {
    log(`GEMM algorithms: the heuristic's first for each of ${lt.planned} cuBLASLt shapes, as on every card of this kind (DC_GEMM_TUNING=on times them at load)`);
  }
  const used = before.free - memInfo(d).free;
  const weightBytes = layout.bytes;
  log(`loaded: ${m.launchPlan.length} launches (${first.gemms.length} GEMMs, ${lt.planned} GEMM shapes planned), ${artifact.cubins.size} kernel units${replicaCount > 1 ? ' (loaded by each replica)' : ''}, arena ${(m.memory.arenaBytes / 1e6).toFixed(1)} MB${lent ? ` (in another model's, ${(lent.bytes / 1e6).toFixed(1)} MB)` : arenaBytes > m.memory.arenaBytes ? ` (${(arenaBytes / 1e6).toFixed(1)} MB allocated, to lend)` : ''}${replicaCount > 1 ? ` x ${replicaCount} replicas` : ''}, weights ${(weightBytes / 1e9).toFixed(2)} GB, device memory used ${(used / 2 ** 30).toFixed(2)} GiB`);

  const enqueueAll = () => { for (const step of steps) step(stream); };
  // What `enqueue` puts on replica 0's stream, timed between two events (ms).
  const timed = (enqueue: () => void) => {
    d.call('cuEventRecord', events[0], stream);
    enqueue();
    d.call('cuEventRecord', events[1], stream);
    d.call('cuEventSynchronize', events[1]);
    return d.elapsedMs(events[0], events[1]);
  };
  const support = m.support;
  // RGB8 on the device: one image output [1, 3, (1,) H, W] of float32 or bfloat16.
  const image = m.io.outputs.length === 1 ? m.io.outputs[0] : undefined;
  const imageShape = image && image.shape.length >= 4 && image.shape[1] === 3 && image.shape.filter((_, i) => i !== 1 && i < image.shape.length - 2).every((d) => d === 1);
  const rgb8Kind = image && imageShape ? SUPPORT_KIND[image.dtype] : undefined;
  const rgb8Fn = support?.rgb8 && rgb8Kind !== undefined ? fnFor(support.rgb8, support.unit, 0) : null;
  let rgb8Buffer: DevicePtr | null = null;
  const loopDevice: LoopDevice | null = support?.euler ? {
    d, manifest: m, replicas, multiprocessors: device.multiprocessors, batch: m.batch ?? 1,
    // The step memo's graphs too, before anything runs (its first request fills, the next ones restore).
    prepare: (k) => {
      if (!useGraphs) return;
      for (const r of replicas.slice(0, k)) {
        captured(r);
        if (r.memo) { memoGraph(r, 'fill'); memoGraph(r, 'hit'); }
      }
    },
    launchPlan: (k) => launchOn(replicas[k]),
    memo: memoPlan ? {
      inputs: memoPlan.inputs,
      // Keys are per replica: a replica's entries are filled and read in its stream's order.
      reserve: (keys) => {
        const ok = memoCache!.reserve(keys.map((k) => memoKey(k.replica, k.key)), stageBytes);
        if (!ok) log(`step memo: ${keys.length} keys do not fit its ${(memoCache!.budgetBytes / 2 ** 20).toFixed(0)} MiB ($DC_STEP_MEMO_MB${lent ? ', shared with the models in this activation memory' : ''}) or the device memory: this request runs its full steps`);
        return ok;
      },
      launch: (k, key) => memoStep(replicas[k], memoKey(k, key)),
    } : null,
    euler: fnFor(support.euler, support.unit, 0),
    cfgEuler: support.cfgEuler ? fnFor(support.cfgEuler, support.unit, 0) : null,
    checkInputs: (given) => checkInputs(m, given),
  } : null;
  let closed = false;
  // A denoising loop in flight: it yields to the event loop between steps, so a close() could come meanwhile (the
  // pipeline releases its models only after the server drains): refused, rather than freeing what the loop uses.
  let loopRunning = false;
  // A start() whose finish() has not run yet (here or in a model sharing the arena): every other use waits for it (its outputs would be the other run's).
  const idle = (what: string) => {
    if (closed) fail(`model ${m.model} (${what})`, 'an open model', 'a closed one');
    if (arenaShare.busy !== null) fail(`model ${m.model} (${what})`, 'no run in flight (one started and not finished: runs of one model, or of models sharing its arena, must not overlap)', `a run of ${arenaShare.busy} in flight`);
  };
  const checked = (given: Record<string, Tensor>) => {
    idle('run');
    checkInputs(m, Object.fromEntries(Object.entries(given).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }])));
    return given;
  };

  let loadSeconds = 0;
  const model: Model = {
    description: `gpu ${device.name} ${dir}${label}`,
    artifact, device, synthetic,
    arenaShare,
    memory: { arenaBytes: lent ? 0 : arenaBytes * replicaCount, weightBytes, workspaceBytes: lent ? 0 : WORKSPACE_BYTES * replicaCount, deviceUsedBytes: used },
    // Set once the load is whole: after weights.bin's part hashes are joined (below), which a cold page cache can make the longest leg.
    get loadSeconds() { return loadSeconds; },
    gemmTuning,
    replicas: replicaCount,
    stepMemo: !!memoPlan,
    weightSection(entry, section) {
      if (shared.has(entry)) return options.weightsFrom!.weightSection(entry, section);
      const placed = layout.sections.get(entry)?.[section];
      return placed ? weights + placed.offset : undefined;
    },
    run(given) {
      return first.host.run(checked(given));
    },
    runMany(list) {
      return model.start(list)();
    },
    start(list, how) {
      if (list.length > replicas.length) fail('runMany', `at most ${replicas.length} input sets (the model's replicas)`, `${list.length}`);
      list.forEach(checked);
      // Graphs are captured before anything runs (a capture while another stream works is refused),
      // then every set is copied in and launched on its own stream; finish() waits and collects in order.
      if (useGraphs) list.forEach((_, i) => captured(replicas[i]));
      arenaShare.busy = dir;
      try {
        list.forEach((given, i) => { replicas[i].host.stage(given); launchOn(replicas[i]); });
      } catch (e) {
        arenaShare.busy = null;
        throw e;
      }
      const finish = () => {
        if (closed) fail(`model ${m.model} (finish)`, 'an open model', 'closed while its run was in flight');
        arenaShare.busy = null;
        return list.map((_, i) => { d.call('cuStreamSynchronize', replicas[i].stream); return replicas[i].host.collect({ onDevice: how?.outputsOnDevice }); });
      };
      return Object.assign(finish, { settled: async () => { for (const r of replicas.slice(0, list.length)) await streamDone(d, r.stream); } });
    },
    ...(rgb8Fn && image ? {
      async rgb8(given: Record<string, Tensor>) {
        checked(given); // refuses a closed model and a run in flight
        const plane = image.shape.at(-2)! * image.shape.at(-1)!;
        rgb8Buffer ??= take(3 * plane, 'RGB8 image');
        first.host.stage(given);
        launchOn(first);
        launch(d, rgb8Fn, Math.max(1, Math.min(Math.ceil(plane / 256), device.multiprocessors * 8)), 256, 0, stream,
          new KernelParams([{ ptr: first.arena + image.offset }, { i32: rgb8Kind! }, { ptr: rgb8Buffer }, { i64: plane }]));
        arenaShare.busy = dir; // Node's event loop runs while the decoder does: nothing else uses the model meanwhile
        try {
          await streamDone(d, stream);
        } finally {
          arenaShare.busy = null;
        }
        first.host.settle();
        const out = new Uint8Array(3 * plane);
        d.call('cuMemcpyDtoH', out, rgb8Buffer, out.length);
        return out;
      },
    } : {}),
    ...(loopDevice ? {
      async denoise(loop: DenoiseLoop) {
        idle('denoise');
        replicas.forEach((r, i) => claim(i, r.stream)); // its kernels write the latents input before anything is staged
        arenaShare.busy = dir; loopRunning = true; // the loop yields to the event loop between steps: no other use of the model until it settles
        try {
          return await deviceDenoise(loopDevice, loop);
        } finally {
          arenaShare.busy = null; loopRunning = false;
        }
      },
    } : {}),
    profile() {
      idle('profile');
      claim(0, stream);
      const marks = steps.map(() => createEvent(d)).concat([createEvent(d)]);
      steps.forEach((step, i) => { d.call('cuEventRecord', marks[i], stream); step(stream); });
      d.call('cuEventRecord', marks[steps.length], stream);
      d.call('cuEventSynchronize', marks[steps.length]);
      arenaShare.holders[0] = null; // another model's inputs there (a shared arena) are overwritten
      const out = m.launchPlan.map((l, i) => ({
        node: l.node, kind: l.kind,
        label: l.kind === 'gemm' ? `gemm ${l.precision}` : l.kind === 'kernel' ? l.kernel.replace(/_[0-9a-f]{8,}$/, '') : l.kind,
        ms: d.elapsedMs(marks[i], marks[i + 1]),
      }));
      for (const e of marks) d.call('cuEventDestroy', e);
      return out;
    },
    time(n, useGraph) {
      idle('time');
      claim(0, stream);
      const graph = first.graph;
      if (useGraph && !graph) fail('time()', 'a captured CUDA graph (call run() first)', 'none');
      const stats = timingStats(Array.from({ length: n }, () => timed(() => (useGraph ? d.call('cuGraphLaunch', graph!.exec, stream) : enqueueAll()))));
      arenaShare.holders[0] = null; // another model's inputs there (a shared arena) are overwritten
      return stats;
    },
    timeMemo(n) {
      idle('timeMemo');
      if (!first.memo || !memoCache) return null;
      claim(0, stream);
      if (!first.graph && useGraphs) fail('timeMemo()', 'a run() first (its inputs are the step\'s)', 'none');
      const out = m.io.outputs[0], full = new Uint8Array(out.bytes), got = new Uint8Array(out.bytes);
      const key = memoKey(0, 'timeMemo');
      if (!memoCache.reserve([key], stageBytes)) return null;
      memoCache.entry(key).filled = false;
      memoStep(first, key); // fill
      d.call('cuStreamSynchronize', stream);
      d.call('cuMemcpyDtoH', full, first.arena + out.offset, out.bytes);
      // Checked once with every arena byte but the inputs' poisoned first (on the replica's non-blocking
      // stream: a plain cuMemsetD8 would race the step): whatever the restoring step reads that it
      // neither restores nor computes shows as different outputs. Then timed without the poison (a
      // memory-bound fill before each would change what the power cap allows the step).
      const inputs = [...m.io.inputs].sort((a, b) => a.offset - b.offset);
      let at = 0;
      for (const x of inputs) { if (x.offset > at) d.call('cuMemsetD8Async', first.arena + at, 0xff, x.offset - at, stream); at = Math.max(at, x.offset + x.bytes); }
      if (m.memory.arenaBytes > at) d.call('cuMemsetD8Async', first.arena + at, 0xff, m.memory.arenaBytes - at, stream);
      memoStep(first, key);
      d.call('cuStreamSynchronize', stream);
      d.call('cuMemcpyDtoH', got, first.arena + out.offset, out.bytes);
      let identical = Buffer.compare(full, got) === 0;
      // Alternating with the full step, so both see the same clocks and temperature.
      const ms: number[] = [], fullMs: number[] = [];
      for (let i = 0; i < n; i++) {
        fullMs.push(timed(() => launchOn(first)));
        ms.push(timed(() => memoStep(first, key)));
        d.call('cuMemcpyDtoH', got, first.arena + out.offset, out.bytes);
        identical &&= Buffer.compare(full, got) === 0;
      }
      arenaShare.holders[0] = null; // the poison and the restoring steps rewrote the arena: the next run stages every input afresh
      return { ...timingStats(ms), full: timingStats(fullMs), launchesSkipped: memoPlan!.launches.length, identical };
    },
    close() {
      if (closed) return;
      if (loopRunning) fail(`model ${m.model} (close)`, 'no denoising loop in flight (await it first)', 'a loop running');
      closed = true;
      for (const r of replicas) {
        d.call('cuStreamSynchronize', r.stream); // a run in flight drains before its staged bytes go
        r.host.clear();
        if (r.graph) { d.call('cuGraphExecDestroy', r.graph.exec); d.call('cuGraphDestroy', r.graph.graph); }
        for (const g of Object.values(r.memo?.graphs ?? {})) { d.call('cuGraphExecDestroy', g.exec); d.call('cuGraphDestroy', g.graph); }
      }
      if (!lent) arenaShare.memo?.close(); // the lender's: every model in its memory has closed before it
      if (!lent) for (const e of arenaShare.reads.flatMap((list) => list.splice(0))) d.call('cuEventDestroy', e);
      for (const g of gemms) g.destroy();
      lt.close();
      for (const e of events) d.call('cuEventDestroy', e);
      for (const r of replicas) d.call('cuStreamDestroy', r.stream);
      for (const p of allocations) d.call('cuMemFree', p);
      for (const mod of loaded.flatMap((x) => [...x.values()])) d.call('cuModuleUnload', mod);
      d.call('cuDevicePrimaryCtxRelease', device.ordinal);
    },
  };
  if (partsCheck) {
    try {
      partsCheck.join();
    } catch (e) {
      model.close(); // nothing ran on the unchecked bytes
      throw e;
    }
    const parts = artifact.uncheckedParts!.sha256.length, threads = partsCheck.threads;
    const how = partsCheck.chunks ? 'read once for the upload and the check' : 'checked while loading';
    log(`weights.bin: ${parts} part${parts === 1 ? '' : 's'}' sha256 as the manifest's (${how}, on ${threads} thread${threads === 1 ? '' : 's'}, ${((performance.now() - partsCheck.started) / 1000).toFixed(1)} s)`);
  }
  loadSeconds = (performance.now() - t0) / 1000;
  log(`load: ${loadSeconds.toFixed(1)} s in all${fileBytes ? ` (weights.bin ${(fileBytes / 1e9).toFixed(2)} GB)` : ''}`);
  return model;
}
