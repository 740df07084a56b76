/**
 * A compiled pipeline on the GPU against diffusers, end to end, on the tiny references
 * (test/fixtures/pipeline_reference, made by models/reference/make_reference.py): for each case the
 * pipeline (GPU executor, the artifact's own weights) generates from the reference's prompt and
 * initial noise at the case's size, then
 *   - its final latents (GeneratedImage.latents) against diffusers' latents_final: relative L2, cosine;
 *   - its RGB8 against diffusers' own image (image_rgb8): largest level difference, values that
 *     differ, PSNR.
 * Bars: latents cosine >= 0.995 (issue 7's bar for the FP8 path on the tiny fixtures) and image PSNR
 * >= 40 dB (an FP8 error of the latents up to about 1e-2 moves a pixel by a few levels at most; a
 * wrong grid, layout, schedule or CFG moves it by tens). The CPU executor's twin is
 * test/pipeline/fidelity.test.ts (to 1e-4, and at most one level).
 *
 *   tsx test/gpu/pipeline-fidelity.ts ARTIFACT REFERENCE_DIR CASE...
 *
 * CASE: a reference folder's name; its size is the name's WxH suffix (else 64x64), and a name with
 * "cfg" runs true CFG with the negative prompt " " (as make_reference.py). Prints one JSON line per
 * case; exits 1 when a case misses a bar. Bundled for the GPU host by esbuild (no Node there).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readNpy } from '../../compiler/npy.ts';
import { gpuExecutorFactory, loadGpuRuntime } from '../../runtime/executor/gpu.ts';
import { compare } from '../../runtime/gpu/run-cli.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { rgbAgreement } from '../helpers/images.ts';

const MIN_COSINE = 0.995, MIN_PSNR = 40;
const [artifact, refDir, ...cases] = process.argv.slice(2);
if (!artifact || !refDir || !cases.length) throw new Error('usage: pipeline-fidelity.ts ARTIFACT REFERENCE_DIR CASE...');
const meta = JSON.parse(readFileSync(join(refDir, 'meta.json'), 'utf8')) as { prompt: string; steps: number; guidance: number };

const pipeline = await loadPipeline(artifact, gpuExecutorFactory(await loadGpuRuntime()));
let failed = 0;
try {
  for (const c of cases) {
    const [width, height] = (/_(\d+)x(\d+)$/.exec(c)?.slice(1).map(Number)) ?? [64, 64];
    const ref = (name: string) => readNpy(join(refDir, c, `${name}.npy`));
    const img = await pipeline.generate({
      prompt: meta.prompt, size: { width, height }, steps: meta.steps, guidanceScale: meta.guidance, seed: 0,
      noise: ref('noise').toFloat32(), ...(c.includes('cfg') ? { negativePrompt: ' ' } : {}),
    });
    const latents = compare(img.latents, ref('latents_final').toFloat32());
    const image = rgbAgreement(img.rgb, ref('image_rgb8').data as Uint8Array);
    const ok = latents.cosine >= MIN_COSINE && image.psnr >= MIN_PSNR;
    if (!ok) failed++;
    console.log(JSON.stringify({ case: c, size: `${width}x${height}`, ok, latents, image: { ...image, values: img.rgb.length }, ms: img.timings }));
  }
} finally {
  const t = performance.now();
  await pipeline.release();
  console.log(`released in ${(performance.now() - t).toFixed(1)} ms`);
}
process.exit(failed ? 1 : 0);
