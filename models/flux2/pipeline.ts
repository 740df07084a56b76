/**
 * Flux.2 [dev] text-to-image on an executor (PIPELINE.md §0), float32, batch 1:
 *   prompt -> prompt_embeds [L, D] (prompt.ts), noise [128, h, w] from the seed -> tokens [h*w, 128],
 *   img_ids/txt_ids, schedule (scheduler.ts); per step v = transformer(latents, embeds, t/1000,
 *   img_ids, txt_ids, guidance) and an Euler update; then tokens -> [128, h, w] -> BN de-normalise
 *   -> unpatchify [32, 2h, 2w] -> VAE decoder -> [3, H, W] -> RGB8.
 * Guidance-distilled: guidance_scale feeds the guidance embedding; there is no CFG and no
 * negative prompt (requests with one are rejected by the server, never silently ignored).
 *
 * Shapes come from the graphs: L = the transformer's text length (or prompt.maxSequenceLength,
 * default 512, when dynamic), the encoder length. Manifest keys: prompt.systemMessage,
 * prompt.maxSequenceLength, vae.bnMean / vae.bnVar (number, list of 128 or .npy; the tiny VAE's are
 * PyTorch's initial 0 / 1), vae.bnEps (1e-4).
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import { type ExecutorFactory, staticDim } from '../../runtime/executor/types.ts';
import { denoise, requestSteps } from '../../runtime/pipeline/denoise.ts';
import { timestepInputs } from '../../runtime/pipeline/flow_match.ts';
import { toTokens } from '../../runtime/pipeline/latents.ts';
import type { PipelineManifest } from '../../runtime/pipeline/manifest.ts';
import { type Modules, ModulePipeline, checkImageTokens, loadModules } from '../../runtime/pipeline/modules.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';
import { channelStats } from '../../runtime/pipeline/stats.ts';
import { type GenerateRequest, type GeneratedImage, type Pipeline, type Size, throwIfAborted } from '../../runtime/pipeline/types.ts';
import { type BatchNormStats, imgIds, txtIds, unpackForVae } from './latents.ts';
import { MAX_SEQUENCE_LENGTH, type PromptEmbeds, SYSTEM_MESSAGE, cleanPrompt, encodePrompt } from './prompt.ts';
import { flux2Schedule } from './scheduler.ts';

const PACKED = 128; // transformer in_channels = 32 latent channels x 2 x 2
const LATENT = 32;

export class Flux2Pipeline extends ModulePipeline implements Pipeline {
  readonly family = 'flux2';
  readonly supportsNegativePrompt = false;

  private constructor(
    m: PipelineManifest,
    modules: Modules,
    private readonly textLength: number,
    private readonly encoderLength: number,
    private readonly bn: BatchNormStats,
    private readonly idCache = new Map<string, { img_ids: Tensor; txt_ids: Tensor }>(),
  ) {
    super(m, modules);
  }

  static async load(m: PipelineManifest, load: ExecutorFactory): Promise<Flux2Pipeline> {
    const modules = await loadModules(m, load, ['hidden_states', 'encoder_hidden_states', 'timestep', 'img_ids', 'txt_ids', 'guidance']);
    const { encoder, transformer } = modules;
    const declared = m.prompt.maxSequenceLength as number | undefined;
    const graphText = staticDim(transformer, 'encoder_hidden_states', 1);
    const textLength = declared ?? graphText ?? MAX_SEQUENCE_LENGTH;
    if (graphText !== undefined && graphText !== textLength) {
      throw new Error(`${m.path}: prompt.maxSequenceLength ${textLength} but the transformer takes ${graphText} text tokens`);
    }
    const encoderLength = staticDim(encoder, 'input_ids', 1) ?? textLength;
    checkImageTokens(m, transformer, (s) => {
      const g = grid(s, m.vaeScaleFactor);
      return g.h * g.w;
    });
    const bn = {
      mean: channelStats(m.vae.bnMean, PACKED, 'vae.bnMean', m.path),
      variance: channelStats(m.vae.bnVar, PACKED, 'vae.bnVar', m.path),
      eps: typeof m.vae.bnEps === 'number' ? m.vae.bnEps : 1e-4,
    };
    return new Flux2Pipeline(m, modules, textLength, encoderLength, bn);
  }

  /** prompt_embeds [L, D] as the transformer takes them (prompt.ts). */
  encode(prompt: string): Promise<PromptEmbeds> {
    const systemMessage = typeof this.m.prompt.systemMessage === 'string' ? this.m.prompt.systemMessage : SYSTEM_MESSAGE;
    return encodePrompt(this.encoder, this.tok, prompt, this.textLength, this.encoderLength, systemMessage);
  }

  async generate(req: GenerateRequest): Promise<GeneratedImage> {
    if (req.negativePrompt !== undefined) throw new Error('Flux.2 is guidance-distilled: it takes no negative prompt');
    this.checkSize(req.size);
    const { h, w } = grid(req.size, this.m.vaeScaleFactor);
    const t0 = performance.now();
    throwIfAborted(req.signal);
    const generator = req.noise ? undefined : new GaussianNoise(req.seed); // a bad seed throws before the encoder starts
    const encoding = this.encode(req.prompt);
    // Drawn while the text encoder runs (an executor that launches and yields, as the GPU one); awaited
    // together, so an encoder that fails while the noise is drawn is a failed request, not an unhandled rejection.
    const [prompt, noise] = await Promise.all([encoding, req.noise ?? generator!.fillAsync(PACKED * h * w)]);
    const t1 = performance.now();

    if (noise.length !== PACKED * h * w) throw new Error(`Flux.2 noise: expected ${PACKED}x${h}x${w} values, found ${noise.length}`);
    const schedule = flux2Schedule(req.steps, h * w);
    const fixed = {
      encoder_hidden_states: prompt.tensor,
      ...this.ids(h, w),
      guidance: new Tensor('float32', [1], Float32Array.of(req.guidanceScale)),
    };
    throwIfAborted(req.signal);
    const steps = requestSteps(req);
    // On the device where the executor can (no host round trip per step), else on the host: the same latents (denoise.ts).
    const latents = await denoise(this.transformerFor(req.size), {
      inputs: [fixed], latentsInput: 'hidden_states', timestepInput: 'timestep',
      latents: toTokens(noise, { channels: PACKED, height: h, width: w }), latentsShape: [1, h * w, PACKED],
      sigmas: schedule.sigmas, timesteps: timestepInputs(schedule),
      onStep: steps.onStep,
    });
    const t2 = performance.now();

    throwIfAborted(req.signal);
    const rgb = await this.decode(this.vaeInput(latents, req.size), 2 * h, 2 * w, req.size);
    const cleaned = cleanPrompt(req.prompt);
    return {
      rgb, latents, width: req.size.width, height: req.size.height, seed: req.seed,
      ...(cleaned !== req.prompt ? { revisedPrompt: cleaned } : {}),
      timings: { encodeMs: t1 - t0, denoiseMs: t2 - t1, decodeMs: performance.now() - t2, ...steps.timings() },
    };
  }

  /** img_ids / txt_ids for a token grid: the same Tensors for every request (never written), so an executor keeps them staged. */
  private ids(h: number, w: number): { img_ids: Tensor; txt_ids: Tensor } {
    const key = `${h}x${w}`;
    let ids = this.idCache.get(key);
    if (!ids) this.idCache.set(key, (ids = { img_ids: imgIds(h, w), txt_ids: txtIds(this.textLength) }));
    return ids;
  }

  /** Packed latents [h*w, 128] -> the VAE decoder's input [32, 2h, 2w]: unpack, BN de-normalise, unpatchify (one pass, latents.ts). */
  vaeInput(latents: Float32Array, size: Size): Float32Array {
    const { h, w } = grid(size, this.m.vaeScaleFactor);
    return unpackForVae(latents, h, w, this.bn);
  }

  /** VAE decode of the whole latent to RGB8. */
  private decode(latent: Float32Array, H: number, W: number, size: Size): Promise<Uint8Array> {
    return this.decodeRgb8(new Tensor('float32', [1, LATENT, H, W], latent), size);
  }
}

/** Token grid of an image size: one token = 2x2 latent pixels = (2*vaeScale)^2 image pixels. */
export function grid(s: Size, vaeScaleFactor: number): { h: number; w: number } {
  return { h: s.height / (2 * vaeScaleFactor), w: s.width / (2 * vaeScaleFactor) };
}
