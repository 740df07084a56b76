/**
 * What a family pipeline (models/<family>/pipeline.ts) offers the server: one image per call,
 * from a prompt, a size it supports and a seed. Batching of n images is the caller's loop (every
 * bundled graph has batch 1), which is also what makes each image reproducible from its own seed.
 */

export interface Size { width: number; height: number }

export const formatSize = (s: Size): string => `${s.width}x${s.height}`;

export interface GenerateRequest {
  prompt: string;
  /** Qwen-Image: enables true CFG (with guidanceScale > 1). Flux.2 rejects it. */
  negativePrompt?: string;
  size: Size;
  steps: number;
  /** Flux.2: the guidance-embedding value; Qwen-Image: true_cfg_scale. */
  guidanceScale: number;
  seed: number;
  /**
   * Initial noise in the family's diffusers layout (Flux.2 [128, h, w], Qwen-Image [16, 2h, 2w]),
   * used instead of the noise drawn from `seed`: the way to reproduce a run made elsewhere, since
   * torch's generators are not regenerated here (noise.ts).
   */
  noise?: Float32Array;
  /**
   * Called after each denoising step (1-based) with the packed latents [h*w, K] (a live buffer: copy
   * to keep) where the loop runs on the host; a loop on the device (runtime/pipeline/denoise.ts) has
   * no host copy between steps and passes none.
   */
  onStep?: (step: number, total: number, latents?: Float32Array) => void;
  /** Checked before the text encoder and after each denoising step (the device loop has the next step enqueued by then); an aborted request stops there. */
  signal?: AbortSignal;
}

export interface GeneratedImage {
  /** Interleaved RGB8, height*width*3. */
  rgb: Uint8Array;
  width: number;
  height: number;
  seed: number;
  /** The prompt as the model saw it, when the pipeline changed it (Flux.2 drops "[IMG]"). */
  revisedPrompt?: string;
  /** The denoised latents as the loop left them, packed [h*w, K] (diffusers' output_type='latent'), before the VAE. */
  latents: Float32Array;
  timings: StageTimings;
}

/** A request's stages (wall time, ms) and, where the denoising loop ran on the device, each step's device time. */
export interface StageTimings {
  encodeMs: number;
  denoiseMs: number;
  decodeMs: number;
  /** Each denoising step's device time in ms (DenoiseLoop.onStep's deviceMs), in order; absent where the loop ran on the host. */
  stepsMs?: number[];
}

export interface PipelineDefaults { steps: number; guidanceScale: number }

export interface Pipeline {
  readonly family: string;
  readonly name: string;
  readonly sizes: readonly Size[];
  readonly defaults: PipelineDefaults;
  readonly supportsNegativePrompt: boolean;
  /** Executor descriptions, for the server's log. */
  readonly executors: readonly string[];
  generate(req: GenerateRequest): Promise<GeneratedImage>;
  /** Runs the modules a first request does not reach once (their first-run costs: CUDA graph capture), where there are any. */
  warmUp?(): Promise<void>;
  /** Device memory the pipeline's executors hold, when they know it (GPU); undefined on the CPU. */
  deviceBytes?(): number | undefined;
  /** The PCI bus id of the board its executors run on (GPU); undefined on the CPU. */
  deviceBusId?(): string | undefined;
  release(): Promise<void>;
}

export class AbortedError extends Error {
  constructor() {
    super('generation aborted');
    this.name = 'AbortedError';
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError();
}
