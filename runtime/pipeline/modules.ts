/**
 * What every text-to-image family holds: its manifest, tokenizer and three executors (text encoder,
 * transformer, VAE decoder). `loadModules` loads them together (releasing the loaded ones when one
 * fails, executor/types.ts loadAll) and checks each takes the inputs the family feeds it;
 * `ModulePipeline` answers the Pipeline members that do not depend on the family. The families
 * (models/<family>/pipeline.ts) add their prompt, schedule and latent handling.
 */
import { type Executor, type ExecutorFactory, deviceBytes, loadAll, requireInputs, takesTrailing } from '../executor/types.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import { rgb8 } from './image.ts';
import { type PipelineManifest, ROLES, graphRef } from './manifest.ts';
import { sharedNoisePool } from './noise.ts';
import { descriptionGraphs } from './sized-graphs.ts';
import { TextTokenizer } from './tokenizer.ts';
import { type Size, formatSize } from './types.ts';

export interface Modules { tok: TextTokenizer; encoder: Executor; transformer: Executor; vae: Executor }

/** The tokenizer and the three executors of `m`, each checked for the inputs the family feeds it. */
export async function loadModules(m: PipelineManifest, load: ExecutorFactory, transformerInputs: readonly string[]): Promise<Modules> {
  sharedNoisePool(); // its workers start while the modules load (noise.ts fillAsync)
  const tok = TextTokenizer.load(m.tokenizer);
  const [encoder, transformer, vae] = await loadAll(load, ROLES.map((role) => descriptionGraphs(m, graphRef(m, role))));
  requireInputs(encoder, ['input_ids', 'attention_mask']);
  requireInputs(transformer, [...transformerInputs]);
  requireInputs(vae, ['latents']);
  checkLatents(m, vae);
  return { tok, encoder, transformer, vae };
}

/** Every size the manifest serves must be a latent the VAE decoder takes whole (its own, or a variant's: another size). */
export function checkLatents(m: PipelineManifest, vae: Executor): void {
  for (const s of m.sizes) {
    const latent = [s.height / m.vaeScaleFactor, s.width / m.vaeScaleFactor];
    if (!takesTrailing(vae, 'latents', latent)) throw new Error(`${m.path}: size ${formatSize(s)} is a ${latent.join(' x ')} latent, which the VAE decoder does not take (${vae.description})`);
  }
}

/** Every size the manifest serves must be an image-token count the transformer takes (its own, or a variant's: another size). */
export function checkImageTokens(m: PipelineManifest, transformer: Executor, tokensOf: (s: Size) => number): void {
  const counts = [transformer.inputs, ...(transformer.variants ?? [])].map((inputs) => inputs.find((i) => i.name === 'hidden_states')?.shape[1]);
  if (counts.some((d) => typeof d !== 'number')) return; // a symbolic token dim takes any size
  for (const s of m.sizes) {
    const n = tokensOf(s);
    if (!counts.includes(n)) throw new Error(`${m.path}: size ${formatSize(s)} is ${n} image tokens, the transformer takes ${[...new Set(counts)].join(' or ')}`);
  }
}

/** An executor's modules of one image size, where it has modules tied to sizes (Executor.forSize); else the executor. */
const ofSize = (e: Executor, size: Size): Executor => e.forSize?.(formatSize(size)) ?? e;

export abstract class ModulePipeline {
  protected constructor(protected readonly m: PipelineManifest, protected readonly modules: Modules) {}

  protected get tok(): TextTokenizer { return this.modules.tok; }
  protected get encoder(): Executor { return this.modules.encoder; }
  protected get transformer(): Executor { return this.modules.transformer; }
  protected get vae(): Executor { return this.modules.vae; }

  get name(): string { return this.m.name; }
  get sizes(): readonly Size[] { return this.m.sizes; }

  /** The VAE decoder's image of a whole latent as RGB8 (converted on the device where the executor can: bits straight to RGB8). */
  protected async decodeRgb8(latents: Tensor, size: Size): Promise<Uint8Array> {
    const vae = ofSize(this.vae, size);
    return vae.rgb8 ? vae.rgb8({ latents }) : rgb8(Object.values(await vae.run({ latents }))[0], size.height, size.width);
  }

  /** The transformer's modules of a request's size (Executor.forSize): a landscape size and its portrait take the same input shapes, not the same RoPE. */
  protected transformerFor(size: Size): Executor {
    return ofSize(this.transformer, size);
  }

  /** A size the manifest does not list is refused: a module of another grid with as many tokens would run it wrong (Qwen-Image's RoPE is the grid's). */
  protected checkSize(size: Size): void {
    if (!this.m.sizes.some((s) => s.width === size.width && s.height === size.height)) {
      throw new Error(`${this.m.name}: size ${formatSize(size)} is not one this pipeline was built for (${this.m.sizes.map(formatSize).join(', ')})`);
    }
  }
  get defaults() { return this.m.defaults; }
  get executors(): string[] { return [this.encoder, this.transformer, this.vae].map((e) => e.description); }

  deviceBytes(): number | undefined { return deviceBytes([this.encoder, this.transformer, this.vae]); }
  deviceBusId(): string | undefined { return [this.encoder, this.transformer, this.vae].map((e) => e.deviceBusId?.()).find((b) => b !== undefined); }

  /** Executor.warmUp of each executor that has one (the GPU transformer: its batch-2 and text-length modules, each run once). */
  async warmUp(): Promise<void> {
    for (const e of [this.encoder, this.transformer, this.vae]) await e.warmUp?.();
  }

  async release(): Promise<void> {
    await Promise.all([this.encoder.release(), this.transformer.release(), this.vae.release()]);
  }
}
