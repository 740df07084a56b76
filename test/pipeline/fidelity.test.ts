/**
 * Pipeline fidelity against diffusers. test/fixtures/pipeline_reference holds what diffusers'
 * Flux2Pipeline and QwenImagePipeline computed (models/reference/make_reference.py, run on the GPU
 * host: torch 2.11, transformers 5.17, diffusers at the commit in meta.json, float32, CPU device)
 * with the tiny components — the same weights as models/tiny, rebuilt there and checked against the
 * fixtures' PyTorch outputs — the tiny manifests' settings and a torch-drawn initial noise. Our
 * pipelines run the same prompt and noise on the CPU executor (onnxruntime-node) and must match:
 * the tokenizer's ids exactly; prompt embeddings, the latents after the first denoising step (and
 * that step's update alone), the latents after the whole loop, and the VAE decoder's input, each to
 * a relative L2 error <= 1e-4; and the RGB8 image, diffusers' own (output_type='np' made 8-bit), to
 * at most one level per value (latents 1e-4 apart can move a value across a rounding boundary, not by two). Cases: Flux.2 (guidance 4), Qwen-Image without CFG, and Qwen-Image
 * with true CFG (negative prompt " ", scale 4).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../compiler/npy.ts';
import { Flux2Pipeline } from '../../models/flux2/pipeline.ts';
import { tokenizePrompt } from '../../models/flux2/prompt.ts';
import { renderTemplate } from '../../models/qwen_image/prompt.ts';
import { QwenImagePipeline } from '../../models/qwen_image/pipeline.ts';
import { cpuExecutorFactory } from '../../runtime/executor/ort.ts';
import { ROOT } from '../../runtime/paths.ts';
import { patchify, toTokens } from '../../runtime/pipeline/latents.ts';
import { loadManifest } from '../../runtime/pipeline/manifest.ts';
import { TextTokenizer } from '../../runtime/pipeline/tokenizer.ts';
import { rgbAgreement } from '../helpers/images.ts';
import { relL2 } from '../helpers/numerics.ts';

const REF = join(ROOT, 'test', 'fixtures', 'pipeline_reference');
const meta = JSON.parse(readFileSync(join(REF, 'meta.json'), 'utf8')) as { prompt: string; steps: number; guidance: number; seed: number };
const ref = (c: string, name: string) => readNpy(join(REF, c, `${name}.npy`));
const f32 = (c: string, name: string) => ref(c, name).toFloat32();
const SIZE = { width: 64, height: 64 };
const TOL = 1e-4;

const minus = (a: Float32Array, b: Float32Array) => a.map((v, i) => v - b[i]);

/** Runs the pipeline on the reference noise, keeping the latents after step 1; the final ones are GeneratedImage.latents. */
async function run(p: Flux2Pipeline | QwenImagePipeline, noise: Float32Array, negativePrompt?: string) {
  let step1: Float32Array | undefined;
  const img = await p.generate({
    prompt: meta.prompt, negativePrompt, size: SIZE, steps: meta.steps, guidanceScale: meta.guidance, seed: 0, noise,
    // The CPU executor runs the loop on the host, so each step hands its latents over.
    onStep: (step, _total, latents) => { if (step === 1) step1 = latents!.slice(); },
  });
  expect(img.rgb).toHaveLength(64 * 64 * 3);
  return { step1: step1!, final: img.latents, rgb: img.rgb };
}

/** The image against diffusers' own 8-bit image of the case (image_rgb8 [64, 64, 3]). */
function expectImage(rgb: Uint8Array, c: string) {
  const want = ref(c, 'image_rgb8');
  expect(want.shape).toEqual([64, 64, 3]);
  expect(rgbAgreement(rgb, want.data as Uint8Array).maxDiff).toBeLessThanOrEqual(1);
}

const tok = TextTokenizer.load(join(ROOT, 'models', 'tiny', 'tokenizer', 'tokenizer.json'));
let flux: Flux2Pipeline, qwen: QwenImagePipeline;
beforeAll(async () => {
  [flux, qwen] = await Promise.all([
    Flux2Pipeline.load(loadManifest(join(ROOT, 'models', 'flux2', 'tiny.pipeline.json')), cpuExecutorFactory),
    QwenImagePipeline.load(loadManifest(join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json')), cpuExecutorFactory),
  ]);
});
afterAll(async () => { await Promise.all([flux.release(), qwen.release()]); });

describe('Flux.2 tiny pipeline = diffusers Flux2Pipeline', () => {
  it('tokenizes to the same ids (chat template, left padding to 32)', () => {
    const ids = ref('flux2', 'input_ids');
    expect(ids.shape).toEqual([1, 32]);
    expect(tokenizePrompt(tok, meta.prompt, 32, 'Describe the image.').ids).toEqual(Array.from(ids.data as BigInt64Array, Number));
  });

  it('prompt embeddings (layers 1,2,3 of the 64-token encoder, last 32 rows) match', async () => {
    const want = ref('flux2', 'prompt_embeds');
    expect(want.shape).toEqual([1, 32, 192]);
    expect(relL2((await flux.encode(meta.prompt)).embeds, want.toFloat32())).toBeLessThanOrEqual(TOL);
  });

  it('one denoising step, the whole loop and the VAE input match', async () => {
    const noise = f32('flux2', 'noise');
    expect(ref('flux2', 'noise').shape).toEqual([1, 128, 16, 16]);
    const got = await run(flux, noise);
    const packed = toTokens(noise, { channels: 128, height: 16, width: 16 });
    const step1 = f32('flux2', 'latents_step1'), final = f32('flux2', 'latents_final');
    expect(relL2(got.step1, step1)).toBeLessThanOrEqual(TOL);
    expect(relL2(minus(got.step1, packed), minus(step1, packed))).toBeLessThanOrEqual(TOL);
    expect(relL2(got.final, final)).toBeLessThanOrEqual(TOL);
    // The decode path up to the VAE graph (unpack, batch-norm de-normalisation, unpatchify), on diffusers' own latents.
    expect(ref('flux2', 'vae_input').shape).toEqual([1, 32, 32, 32]);
    expect(relL2(flux.vaeInput(final, SIZE), f32('flux2', 'vae_input'))).toBeLessThanOrEqual(1e-6);
    expectImage(got.rgb, 'flux2');
  });
});

describe('Qwen-Image tiny pipeline = diffusers QwenImagePipeline', () => {
  const TEMPLATE = '<|im_start|>system\nDescribe the image.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n';

  it('tokenizes to the same ids', () => {
    const ids = ref('qwen_image', 'input_ids');
    expect(tok.encode(renderTemplate(meta.prompt, TEMPLATE), true)).toEqual(Array.from(ids.data as BigInt64Array, Number));
  });

  it('prompt and negative-prompt embeddings: the kept rows match, the padding is zero and masked out', async () => {
    for (const [text, name] of [[meta.prompt, 'prompt_embeds'], [' ', 'negative_prompt_embeds']] as const) {
      const want = ref('qwen_image_cfg', name);
      const rows = want.shape[1];
      const e = await qwen.encode(text);
      expect(e.length).toBe(rows);
      expect(Array.from(e.mask, Number)).toEqual([...Array(rows).fill(1), ...Array(24 - rows).fill(0)]);
      expect(relL2(e.embeds.subarray(0, rows * 192), want.toFloat32())).toBeLessThanOrEqual(TOL);
      expect(e.embeds.subarray(rows * 192).every((v) => v === 0)).toBe(true);
    }
  });

  for (const [c, negative] of [['qwen_image', undefined], ['qwen_image_cfg', ' ']] as const) {
    it(`${negative === undefined ? 'no CFG' : 'true CFG with a negative prompt'}: one step, the whole loop and the VAE input match`, async () => {
      const noise = f32(c, 'noise');
      expect(ref(c, 'noise').shape).toEqual([1, 1, 16, 32, 32]);
      const got = await run(qwen, noise, negative);
      const step1 = f32(c, 'latents_step1'), final = f32(c, 'latents_final');
      const packedStart = toTokens(patchify(noise, { channels: 16, height: 32, width: 32 }), { channels: 64, height: 16, width: 16 });
      expect(relL2(got.step1, step1)).toBeLessThanOrEqual(TOL);
      expect(relL2(minus(got.step1, packedStart), minus(step1, packedStart))).toBeLessThanOrEqual(TOL);
      expect(relL2(got.final, final)).toBeLessThanOrEqual(TOL);
      expect(ref(c, 'vae_input').shape).toEqual([1, 16, 1, 32, 32]);
      expect(relL2(qwen.vaeInput(final, SIZE), f32(c, 'vae_input'))).toBeLessThanOrEqual(1e-6);
      expectImage(got.rgb, c);
    });
  }

  it('the CFG reference differs from the plain one by far more than the tolerance (so ignoring CFG would fail)', () => {
    expect(relL2(f32('qwen_image_cfg', 'latents_final'), f32('qwen_image', 'latents_final'))).toBeGreaterThan(10 * TOL);
  });
});
