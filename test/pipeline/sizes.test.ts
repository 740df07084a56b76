/**
 * Pipelines at several sizes (compiler/pipeline-artifact.ts `sizes`, `npx compile PIPELINE --size
 * 64x64,80x48,48x80`): the artifact holds the transformer and VAE decoder for each size (modules over
 * the first ones' weights, and the ONNX graphs re-specialised for the CPU executor), and a request at
 * 80 x 48 (a 20 x 12 token grid, both sides unlike the exports' 16 x 16) or at its portrait transpose
 * 48 x 80 gives the latents diffusers' Flux2Pipeline / QwenImagePipeline (true CFG) give at that size
 * (test/fixtures/pipeline_reference, models/reference/make_reference.py) — each step's and the VAE's
 * input, to 1e-4, and the image to a level — from the same artifact that serves 64 x 64 as before. Bad size lists and a
 * manifest whose size modules disagree with its sizes are refused, naming them.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../../compiler/npy.ts';
import { compilePipeline } from '../../compiler/pipeline-artifact.ts';
import { cpuExecutorFactory } from '../../runtime/executor/ort.ts';
import { ROOT } from '../../runtime/paths.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { graphRef, loadManifest } from '../../runtime/pipeline/manifest.ts';
import type { Pipeline } from '../../runtime/pipeline/types.ts';
import { rgbAgreement } from '../helpers/images.ts';
import { relL2 } from '../helpers/numerics.ts';

const REF = join(ROOT, 'test', 'fixtures', 'pipeline_reference');
const meta = JSON.parse(readFileSync(join(REF, 'meta.json'), 'utf8')) as { prompt: string; steps: number; guidance: number };
const f32 = (c: string, name: string) => readNpy(join(REF, c, `${name}.npy`)).toFloat32();
const rgb8 = (c: string) => readNpy(join(REF, c, 'image_rgb8.npy'));
const TOL = 1e-4;


const dir = mkdtempSync(join(tmpdir(), 'sizes-'));
const artifacts: Record<string, string> = {};
const pipes: Record<string, Pipeline> = {};
beforeAll(async () => {
  for (const family of ['flux2', 'qwen_image']) {
    artifacts[family] = join(dir, family);
    await compilePipeline({ pipeline: join(ROOT, 'models', family, 'tiny.pipeline.json'), sizes: ['64x64', '80x48', '48x80'], build: false, out: artifacts[family] });
    pipes[family] = await loadPipeline(artifacts[family], cpuExecutorFactory);
  }
}, 300_000);
afterAll(async () => { await Promise.all(Object.values(pipes).map((p) => p.release())); });

/** The latents after step 1 and after the last step, and the image, of one generation from the reference noise. */
async function generate(p: Pipeline, c: string, size: { width: number; height: number }, negativePrompt?: string) {
  let step1: Float32Array | undefined;
  const img = await p.generate({
    prompt: meta.prompt, negativePrompt, size, steps: meta.steps, guidanceScale: meta.guidance, seed: 0, noise: f32(c, 'noise'),
    onStep: (step, _total, latents) => { if (step === 1) step1 = latents!.slice(); },
  });
  return { step1: step1!, final: img.latents, rgb: img.rgb };
}

describe('a pipeline artifact compiled for 64x64, 80x48 and 48x80', () => {
  it('holds the modules and graphs of each size', () => {
    const m = loadManifest(artifacts.qwen_image);
    expect(m.sizes.map((s) => `${s.width}x${s.height}`)).toEqual(['64x64', '80x48', '48x80']);
    expect(m.sizeModules).toHaveLength(2);
    const s = m.sizeModules![0];
    expect(s.transformer).toMatch(/transformer_80x48$/);
    expect(s.cfgModule).toMatch(/transformer_80x48_cfg$/);
    expect(s.textModules?.map((t) => t.length)).toEqual(m.textModules?.map((t) => t.length));
    expect(s.vaeDecoder).toMatch(/vae_decoder_80x48$/);
    expect(s.graphs.transformer).toMatch(/onnx\/transformer\/model\.80x48\.onnx$/);
    // Each module and graph is tagged with its size: 80x48 and 48x80 take the same input shapes (Executor.forSize picks by size).
    const t = graphRef(m, 'transformer'), v = graphRef(m, 'vaeDecoder');
    expect([t.size, ...t.variants!.map((x) => `${x.size} ${x.compiled.split('/').at(-1)}`)]).toEqual(['64x64', '64x64 transformer_t16', '80x48 transformer_80x48', '80x48 transformer_80x48_t16', '48x80 transformer_48x80', '48x80 transformer_48x80_t16']);
    expect(t.onnxVariants?.map((x) => `${x.size} ${x.onnx.split('/').at(-1)}`)).toEqual(['80x48 model.80x48.onnx', '48x80 model.48x80.onnx']);
    expect([v.size, ...v.variants!.map((x) => x.size)]).toEqual(['64x64', '80x48', '48x80']);
    expect(graphRef(m, 'textEncoder').size).toBeUndefined();
    // The VAE decoder (exported for 16 x 16 latents) is compiled for each size's whole latent: 32 x 32 at 64 x 64.
    expect(m.graphs.vaeDecoder).toMatch(/onnx\/vae_decoder\/model\.64x64\.onnx$/);
  });

  const cases = [['flux2', 'flux2', undefined], ['qwen_image', 'qwen_image_cfg', ' ']] as const;
  for (const [family, prefix, negative] of cases) for (const [width, height] of [[80, 48], [48, 80]]) {
    const c = `${prefix}_${width}x${height}`;
    it(`${family} at ${width}x${height}${negative ? ' (true CFG)' : ''}: one step, the whole loop and the VAE input match diffusers`, async () => {
      const p = pipes[family];
      const got = await generate(p, c, { width, height }, negative);
      expect(relL2(got.step1, f32(c, 'latents_step1'))).toBeLessThanOrEqual(TOL);
      expect(relL2(got.final, f32(c, 'latents_final'))).toBeLessThanOrEqual(TOL);
      const vaeInput = (p as unknown as { vaeInput(l: Float32Array, s: { width: number; height: number }): Float32Array }).vaeInput(f32(c, 'latents_final'), { width, height });
      expect(relL2(vaeInput, f32(c, 'vae_input'))).toBeLessThanOrEqual(1e-6);
      // diffusers' own image, to a level (test/pipeline/fidelity.test.ts says why)
      expect(rgb8(c).shape).toEqual([height, width, 3]);
      expect(rgbAgreement(got.rgb, rgb8(c).data as Uint8Array).maxDiff).toBeLessThanOrEqual(1);
      // the 64 x 64 reference still holds from the same artifact
      const square = family === 'flux2' ? 'flux2' : 'qwen_image_cfg';
      expect(relL2((await generate(p, square, { width: 64, height: 64 }, negative)).final, f32(square, 'latents_final'))).toBeLessThanOrEqual(TOL);
    });
  }

  it('a size the artifact was not compiled for is refused before anything runs', async () => {
    await expect(pipes.flux2.generate({ prompt: 'x', size: { width: 96, height: 48 }, steps: 1, guidanceScale: 4, seed: 1 })).rejects.toThrow(/96x48/);
  });
});

describe('the export\'s own size after another', () => {
  it('64x64 listed second: its CPU graphs are the exports as copied, not the first size\'s, and a request at it matches diffusers', async () => {
    const out = join(dir, 'qwen-second');
    await compilePipeline({ pipeline: join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'), sizes: ['80x48', '64x64'], build: false, out });
    const m = loadManifest(out);
    const t = graphRef(m, 'transformer');
    expect(t.onnx).toMatch(/onnx\/transformer\/model\.80x48\.onnx$/);
    expect(t.onnxVariants?.map((x) => `${x.size} ${x.onnx.split('/').slice(-2).join('/')}`)).toEqual(['64x64 transformer/model.onnx']);
    const p = await loadPipeline(out, cpuExecutorFactory);
    try {
      expect(relL2((await generate(p, 'qwen_image_cfg', { width: 64, height: 64 }, ' ')).final, f32('qwen_image_cfg', 'latents_final'))).toBeLessThanOrEqual(TOL);
    } finally {
      await p.release();
    }
  }, 120_000);
});

describe('bad size lists and manifests', () => {
  it('refuses sizes that are not whole patches, and a size given twice', async () => {
    const pipeline = join(ROOT, 'models', 'flux2', 'tiny.pipeline.json');
    await expect(compilePipeline({ pipeline, sizes: ['64x64', '70x48'], build: false, out: join(dir, 'bad') })).rejects.toThrow(/--size: expected width and height that are positive multiples of 4 .* found 70x48/);
    await expect(compilePipeline({ pipeline, sizes: ['64x64', '64x64'], build: false, out: join(dir, 'bad') })).rejects.toThrow(/--size: expected each size once, found 64x64/);
  });

  it("refuses an artifact whose size modules do not follow its sizes", () => {
    const file = join(artifacts.flux2, 'manifest.json');
    const raw = JSON.parse(readFileSync(file, 'utf8'));
    raw.sizeModules[0].size = '96x48';
    const copy = join(artifacts.flux2, 'tampered.json');
    writeFileSync(copy, JSON.stringify(raw));
    expect(() => loadManifest(copy)).toThrow(/'sizeModules\[0\]\.size' should be sizes\[1\] \(the sizes after the first, in order\), found "96x48"/);
  });
});
