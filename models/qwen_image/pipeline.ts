/**
 * Qwen-Image text-to-image on an executor (PIPELINE.md §0), float32, batch 1:
 *   prompt -> embeds [T, D] + mask (prompt.ts); noise [16, 2h, 2w] from the seed -> patchify ->
 *   tokens [h*w, 64]; schedule (scheduler.ts); per step v_c = transformer(latents, cond, t/1000)
 *   and, when true CFG is on (a negative prompt and guidanceScale > 1, as diffusers), v_u with the
 *   negative embeddings, combined with the norm rescale (runtime/pipeline/denoise.ts trueCfg); Euler
 *   update (the loop on the device where the executor has one); then tokens ->
 *   [16, 2h, 2w] -> mean/std de-normalise -> VAE decoder ([1,16,1,H,W] -> [1,3,1,..], clamps inside)
 *   -> RGB8.
 * The two CFG predictions of a step go to the executor together (runMany / the device loop with two
 * input sets): the GPU executor runs them as one batch-2 run where the artifact has the transformer
 * compiled at batch 2 (`batchedCfg`, runtime/pipeline/README.md "Batching"), else at once on two
 * replicas. The two prompts are encoded at once likewise (two replicas of the text encoder).
 *
 * Manifest keys: prompt.template, prompt.dropTokens (number or "prefix"), prompt.maxSequenceLength,
 * vae.latentsMean / vae.latentsStd (16 values or .npy; default: the Qwen-Image VAE config).
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import { type ExecutorFactory, staticDim } from '../../runtime/executor/types.ts';
import { denoise, requestSteps } from '../../runtime/pipeline/denoise.ts';
import { timestepInputs } from '../../runtime/pipeline/flow_match.ts';
import { patchify, toTokens } from '../../runtime/pipeline/latents.ts';
import type { PipelineManifest } from '../../runtime/pipeline/manifest.ts';
import { type Modules, ModulePipeline, checkImageTokens, loadModules } from '../../runtime/pipeline/modules.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';
import { channelStats } from '../../runtime/pipeline/stats.ts';
import { type GenerateRequest, type GeneratedImage, type Pipeline, type Size, throwIfAborted } from '../../runtime/pipeline/types.ts';
import { LATENTS_MEAN, LATENTS_STD, imgShapes, unpackForVae } from './latents.ts';
import { DEFAULT_SETTINGS, type EncodedText, type QwenPromptSettings, encodePrompt, encodePrompts, resolveDropTokens } from './prompt.ts';
import { qwenSchedule } from './scheduler.ts';

const LATENT = 16;
const PACKED = 64;
const DEFAULT_TEXT_LENGTH = 256;

export class QwenImagePipeline extends ModulePipeline implements Pipeline {
  readonly family = 'qwen_image';
  readonly supportsNegativePrompt = true;

  private constructor(
    m: PipelineManifest,
    modules: Modules,
    private readonly settings: QwenPromptSettings,
    private readonly drop: number,
    private readonly encoderLength: number,
    /** The text lengths the transformer takes, ascending: the export's own, and shorter ones where the artifact has them (Executor.variants). */
    private readonly textLengths: readonly number[],
    private readonly mean: Float32Array,
    private readonly std: Float32Array,
  ) {
    super(m, modules);
  }

  static async load(m: PipelineManifest, load: ExecutorFactory): Promise<QwenImagePipeline> {
    // True CFG encodes two prompts and runs the transformer twice a step: an executor that can runs both at once (Executor.runMany).
    const modules = await loadModules(m, (g) => load(g.role === 'vaeDecoder' ? g : { ...g, concurrentRuns: 2 }), ['hidden_states', 'encoder_hidden_states', 'encoder_hidden_states_mask', 'timestep']);
    const { tok, encoder, transformer } = modules;
    const p = m.prompt;
    const settings: QwenPromptSettings = {
      template: typeof p.template === 'string' ? p.template : DEFAULT_SETTINGS.template,
      dropTokens: typeof p.dropTokens === 'number' || p.dropTokens === 'prefix' ? p.dropTokens : DEFAULT_SETTINGS.dropTokens,
      maxSequenceLength: typeof p.maxSequenceLength === 'number' ? p.maxSequenceLength : DEFAULT_SETTINGS.maxSequenceLength,
    };
    if (!settings.template.includes('{}')) throw new Error(`${m.path}: 'prompt.template' has no '{}' for the prompt`);
    const drop = resolveDropTokens(tok, settings);
    const encoderLength = staticDim(encoder, 'input_ids', 1) ?? drop + settings.maxSequenceLength;
    const textLength = staticDim(transformer, 'encoder_hidden_states', 1) ?? DEFAULT_TEXT_LENGTH;
    const shorter = (transformer.variants ?? []).map((inputs) => inputs.find((i) => i.name === 'encoder_hidden_states')?.shape[1]);
    const textLengths = [...new Set([textLength, ...shorter.filter((n): n is number => typeof n === 'number' && n < textLength)])].sort((a, b) => a - b);
    if (encoderLength <= drop) throw new Error(`${m.path}: the text encoder takes ${encoderLength} tokens, no more than the ${drop} dropped template tokens`);
    checkImageTokens(m, transformer, (s) => {
      const [[, h, w]] = imgShapes(s.height / (2 * m.vaeScaleFactor), s.width / (2 * m.vaeScaleFactor));
      return h * w;
    });
    return new QwenImagePipeline(m, modules, settings, drop, encoderLength, textLengths,
      channelStats(m.vae.latentsMean, LATENT, 'vae.latentsMean', m.path, LATENTS_MEAN),
      channelStats(m.vae.latentsStd, LATENT, 'vae.latentsStd', m.path, LATENTS_STD));
  }

  /** Kept text rows padded to the transformer's length, with their mask (prompt.ts). */
  encode(prompt: string): Promise<EncodedText> {
    return encodePrompt(this.encoder, this.tok, prompt, this.settings, this.drop, this.encoderLength, this.textLengths);
  }

  async generate(req: GenerateRequest): Promise<GeneratedImage> {
    this.checkSize(req.size);
    const [[, h, w]] = imgShapes(req.size.height / (2 * this.m.vaeScaleFactor), req.size.width / (2 * this.m.vaeScaleFactor));
    const cfg = req.negativePrompt !== undefined && req.guidanceScale > 1;
    const t0 = performance.now();
    throwIfAborted(req.signal);
    const generator = req.noise ? undefined : new GaussianNoise(req.seed); // a bad seed throws before the encoder starts
    const encoding = encodePrompts(this.encoder, this.tok, cfg ? [req.prompt, req.negativePrompt!] : [req.prompt], this.settings, this.drop, this.encoderLength, this.textLengths);
    // Drawn while the text encoder runs (an executor that launches and yields, as the GPU one); awaited
    // together, so an encoder that fails while the noise is drawn is a failed request, not an unhandled rejection.
    const [encoded, noise] = await Promise.all([encoding, req.noise ?? generator!.fillAsync(LATENT * 4 * h * w)]);
    const [cond, uncond] = encoded;
    const t1 = performance.now();

    if (noise.length !== LATENT * 4 * h * w) throw new Error(`Qwen-Image noise: expected ${LATENT}x${2 * h}x${2 * w} values, found ${noise.length}`);
    const schedule = qwenSchedule(req.steps, h * w);
    const text = (e: EncodedText) => ({
      encoder_hidden_states: e.tensor,
      encoder_hidden_states_mask: new Tensor('int64', [1, e.mask.length], e.mask),
    });
    // One Tensor per prompt for the whole request, so an executor converts its values once (executor/types.ts).
    const condText = text(cond), uncondText = uncond && text(uncond);
    throwIfAborted(req.signal);
    const steps = requestSteps(req);
    // On the device where the executor can (both CFG passes at once, no host round trip per step), else on the host: the same latents (denoise.ts).
    const latents = await denoise(this.transformerFor(req.size), {
      inputs: uncondText ? [condText, uncondText] : [condText], latentsInput: 'hidden_states', timestepInput: 'timestep',
      latents: toTokens(patchify(noise, { channels: LATENT, height: 2 * h, width: 2 * w }), { channels: PACKED, height: h, width: w }), latentsShape: [1, h * w, PACKED],
      sigmas: schedule.sigmas, timesteps: timestepInputs(schedule),
      ...(uncondText ? { cfg: { scale: req.guidanceScale, channels: PACKED } } : {}),
      onStep: steps.onStep,
    });
    const t2 = performance.now();

    throwIfAborted(req.signal);
    const rgb = await this.decode(this.vaeInput(latents, req.size), 2 * h, 2 * w, req.size);
    return {
      rgb, latents, width: req.size.width, height: req.size.height, seed: req.seed,
      timings: { encodeMs: t1 - t0, denoiseMs: t2 - t1, decodeMs: performance.now() - t2, ...steps.timings() },
    };
  }

  /** Packed latents [h*w, 64] -> the VAE decoder's input [16, 2h, 2w] (frame axis of 1 implied): unpack, de-normalise (one pass, latents.ts). */
  vaeInput(latents: Float32Array, size: Size): Float32Array {
    const [[, h, w]] = imgShapes(size.height / (2 * this.m.vaeScaleFactor), size.width / (2 * this.m.vaeScaleFactor));
    return unpackForVae(latents, h, w, this.mean, this.std);
  }

  /** VAE decode of the whole latent to RGB8. */
  private decode(latent: Float32Array, H: number, W: number, size: Size): Promise<Uint8Array> {
    return this.decodeRgb8(new Tensor('float32', [1, LATENT, 1, H, W], latent), size);
  }
}
