/**
 * Executor: what the pipelines run a network on. One executor = one loaded graph (text encoder,
 * transformer or VAE decoder). `run` takes and returns Tensors (compiler/ir/tensor.ts) keyed by
 * the graph's input/output names; `inputs`/`outputs` describe the graph's I/O so a pipeline can read
 * static lengths and grids instead of hard-coding them (a string dim is symbolic: any size).
 *
 * Implementations: cpu (onnxruntime-node, ./ort.ts) and gpu (./gpu.ts: the compiled modules of a
 * pipeline artifact through runtime/gpu); select.ts picks one.
 */
import type { DType } from '../../compiler/ir/dtype.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import type { GraphRef } from '../pipeline/manifest.ts';

export interface ValueInfo {
  name: string;
  dtype: DType;
  /** Static sizes are numbers; symbolic ones are their names. */
  shape: readonly (number | string)[];
}

/** How a run hands its outputs back. */
export interface RunOptions {
  /**
   * Where the executor can (the GPU one), leave the outputs on the device: staged into another module
   * on that device they are copied there (Flux.2's prompt embeddings into the transformer), and read on
   * the host only when their values are read. Such an output's values last until this module, or one
   * sharing its memory, runs again; reading them after that throws (runtime/gpu/device-output.ts).
   * Default: outputs on the host.
   */
  outputsOnDevice?: boolean;
}

export interface Executor {
  /** Human-readable, e.g. "cpu (onnxruntime-node) models/tiny/flux2/model.onnx". */
  readonly description: string;
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /**
   * Further input signatures this executor runs (the same network compiled for other input shapes:
   * GraphRef.variants, shorter texts); every call goes to the one whose inputs have the given shapes.
   */
  readonly variants?: readonly (readonly ValueInfo[])[];
  /**
   * This executor restricted to the modules (graphs) of one image size "WxH" (GraphRef.size): grids of
   * as many tokens, a landscape size and its portrait, take the same input shapes but not the same
   * RoPE, so a pipeline takes the transformer and VAE decoder of the request's size first. Throws for
   * a size it holds none of; absent where no module is tied to a size. Releasing is the whole executor's.
   */
  forSize?(size: string): Executor;
  /**
   * Runs the graph once. A caller does not change a Tensor's values after passing it (a new step's
   * latents are a new Tensor), so an executor may keep what it derived from an input Tensor object
   * (the GPU one keeps its bfloat16 bytes) while the same object comes again. A bfloat16 output
   * may come back undecoded, as a bits tensor (the GPU executor's do, ./bf16.ts): read output
   * values with valuesOf, and pass an output on to another module as it is.
   */
  run(inputs: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>>;
  /**
   * Runs the graph once per input set, at once where the executor can (the GPU one: a replica of
   * the activation memory and a stream per set, GraphRef.concurrentRuns of them); the same outputs
   * as run() on each set. Absent: the caller runs them one after the other.
   */
  runMany?(list: Record<string, Tensor>[]): Promise<Record<string, Tensor>[]>;
  /**
   * A whole flow-matching denoising loop kept on the device (the GPU executor, where the artifact's
   * support unit has the Euler kernels): the same float32 latents as runtime/pipeline/denoise.ts's
   * host loop, bit for bit, without a host round trip per step. Absent: the caller runs that loop.
   */
  denoise?(loop: DenoiseLoop): Promise<Float32Array>;
  /**
   * run() of a graph whose one output is an image [1, 3, (1,) H, W] in ~[-1, 1], returned as
   * interleaved RGB8 (H*W*3 bytes, runtime/pipeline/image.ts rgb8's bytes) converted where the image
   * is (the GPU executor: on the device, a third of the bytes copied back). Absent: run() and rgb8.
   */
  rgb8?(inputs: Record<string, Tensor>): Promise<Uint8Array>;
  /**
   * Runs every module the executor holds (the batch-2 and input-shape variants too: a first request
   * reaches only some of them) once, on zero inputs (ones in integer and bool inputs: masks keep every
   * token), so no later request pays a module's first run (its CUDA graph capture). Absent: nothing to warm.
   */
  warmUp?(): Promise<void>;
  release(): Promise<void>;
  /** Device memory this graph holds (weights, arena), when the executor knows it (GPU). */
  deviceBytes?(): number;
  /** The PCI bus id of the board it runs on, when it runs on one (GPU). */
  deviceBusId?(): string;
}

/**
 * A denoising loop (runtime/pipeline/denoise.ts): for step i = 0..N-1 the graph runs on each input
 * set with `latentsInput` = the latents (bfloat16-rounded where the graph takes bfloat16) and
 * `timestepInput` = timesteps[i], its first output is the velocity v (with two input sets and
 * `cfg`: Qwen-Image's true CFG of the two, trueCfg), then latents += f32(f32(sigma_{i+1} - sigma_i) * v)
 * (flow_match.ts eulerStep). Returns the final latents; `latents` itself is not changed.
 */
export interface DenoiseLoop {
  /** One input set per prediction, without the latents and timestep inputs: [conditional] or [conditional, unconditional]. */
  inputs: Record<string, Tensor>[];
  latentsInput: string;
  timestepInput: string;
  /** Initial latents, float32, as the graph's latents input is laid out. */
  latents: Float32Array;
  /** Their shape as the graph's latents input takes it (its symbolic dims bound): [1, h*w, channels]. */
  latentsShape: readonly number[];
  /** N+1 float32 sigmas (the last 0): step i moves by f32(sigmas[i+1] - sigmas[i]). */
  sigmas: Float32Array;
  /** N values: the timestep input of each step. */
  timesteps: Float32Array;
  /** With two input sets: v = trueCfg(v_cond, v_uncond, scale, channels) (per-token norm rescale). */
  cfg?: { scale: number; channels: number };
  /**
   * Called after each step (1-based) completes: with the live latents where the loop runs on the
   * host, with the step's device time (ms, CUDA events) where it runs on the device. An exception
   * from it (an abort) stops the loop and is rethrown.
   */
  onStep?: (step: number, latents?: Float32Array, deviceMs?: number) => void;
}

/** Loads every graph; when one fails, releases those that loaded (device memory) and rethrows its error. */
export async function loadAll(factory: ExecutorFactory, graphs: readonly GraphRef[]): Promise<Executor[]> {
  const settled = await Promise.allSettled(graphs.map((g) => factory(g)));
  const failed = settled.find((s) => s.status === 'rejected');
  if (!failed) return settled.map((s) => (s as PromiseFulfilledResult<Executor>).value);
  await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.release() : undefined)));
  throw failed.reason;
}

/** Device memory of a pipeline's executors: their sum, or undefined when none of them knows (CPU). */
export function deviceBytes(executors: readonly Executor[]): number | undefined {
  const known = executors.map((e) => e.deviceBytes?.()).filter((b): b is number => b !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0) : undefined;
}

export type ExecutorKind = 'cpu' | 'gpu';

/** Loads one network of a pipeline on an executor kind (the CPU one reads `onnx`, the GPU one `compiled`). */
export type ExecutorFactory = (graph: GraphRef) => Promise<Executor>;

/** The static size of axis `axis` of input (or output) `name`; undefined when symbolic. Throws naming the graph when no such value exists. */
export function staticDim(exec: Executor, name: string, axis: number): number | undefined {
  const info = exec.inputs.find((i) => i.name === name) ?? exec.outputs.find((o) => o.name === name);
  if (!info) throw new Error(`${exec.description}: no input or output named '${name}'`);
  const d = info.shape[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/**
 * Does the executor (its first input signature or a variant: another size) take input `name` with
 * these sizes on the last axes? A symbolic dim takes any size.
 */
export function takesTrailing(exec: Executor, name: string, dims: readonly number[]): boolean {
  return [exec.inputs, ...(exec.variants ?? [])].some((inputs) => {
    const shape = inputs.find((i) => i.name === name)?.shape;
    return !!shape && dims.every((d, k) => { const s = shape[shape.length - dims.length + k]; return typeof s !== 'number' || s === d; });
  });
}

/**
 * An executor over several of the same network at other input shapes (the CPU executor's graphs at a
 * pipeline artifact's further sizes): each run goes to the first whose static input dims match;
 * with `sizes` (each graph's "WxH"), forSize keeps only that size's.
 */
export function byInputShapes(list: readonly Executor[], sizes?: readonly (string | undefined)[]): Executor {
  const [first, ...rest] = list;
  const takes = (e: Executor, given: Record<string, Tensor>) => Object.entries(given).every(([name, t]) => {
    const shape = e.inputs.find((i) => i.name === name)?.shape;
    return !shape || (shape.length === t.shape.length && shape.every((d, k) => typeof d !== 'number' || d === t.shape[k]));
  });
  const over = (some: readonly Executor[], description: string): Executor => ({
    description, inputs: some[0].inputs, outputs: some[0].outputs, ...(some.length > 1 ? { variants: some.slice(1).map((e) => e.inputs) } : {}),
    run: (given) => (some.find((e) => takes(e, given)) ?? noGraph(first, given)).run(given),
    release: async () => undefined, // the whole executor's
  });
  const whole = over(list, `${first.description} (+ ${rest.length} at other input shapes)`);
  return {
    ...whole,
    ...(sizes?.some((x) => x) ? { forSize: (size: string) => {
      const some = list.filter((_, i) => sizes[i] === size);
      if (!some.length) throw new Error(`${first.description}: no graph for size ${size} (has ${sizes.filter((x) => x).join(', ')})`);
      return over(some, `${whole.description} at ${size}`);
    } } : {}),
    release: async () => { await Promise.all(list.map((e) => e.release())); },
  };
}

function noGraph(first: Executor, given: Record<string, Tensor>): never {
  throw new Error(`${first.description}: no graph takes ${Object.entries(given).map(([n, t]) => `${n} [${t.shape}]`).join(', ')}`);
}

/** The dtype of input `name` (undefined when the graph has no such input). */
export function inputDtype(exec: Executor, name: string): DType | undefined {
  return exec.inputs.find((i) => i.name === name)?.dtype;
}

/** Checks that a graph has the inputs a pipeline feeds it (by name). */
export function requireInputs(exec: Executor, names: readonly string[]): void {
  const have = new Set(exec.inputs.map((i) => i.name));
  const missing = names.filter((n) => !have.has(n));
  if (missing.length) {
    throw new Error(`${exec.description}: expected inputs ${names.join(', ')}; missing ${missing.join(', ')} (has ${[...have].join(', ')})`);
  }
}
