/**
 * Image generation over HTTP with the real tiny pipelines on the CPU executor: decodable images of
 * the requested size in every output format, seed determinism (same seed -> same bytes), n > 1
 * with per-image seeds that each reproduce alone, random seeds returned, URL output from a storage
 * folder, readiness/models endpoints, and Qwen-Image's negative-prompt (true CFG) path.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../runtime/pipeline/types.ts';
import { type Running, loadTiny, post, start } from './helpers.ts';

let flux: Pipeline, qwen: Pipeline, fluxServer: Running, qwenServer: Running;
const storage = mkdtempSync(join(tmpdir(), 'serve-storage-'));
beforeAll(async () => {
  [flux, qwen] = await Promise.all([loadTiny('flux2'), loadTiny('qwen_image')]);
  [fluxServer, qwenServer] = await Promise.all([start({ pipeline: flux, storageDir: storage }), start({ pipeline: qwen, warmup: false })]);
});
afterAll(async () => {
  await Promise.all([fluxServer.close(), qwenServer.close()]);
  await Promise.all([flux.release(), qwen.release()]);
});

const bytes = (item: { b64_json: string }) => Buffer.from(item.b64_json, 'base64');
const req = { prompt: 'a red fox', num_inference_steps: 2 };

describe('Flux.2 tiny over HTTP', () => {
  it('is ready after warm-up and lists its model', async () => {
    const ready = await fetch(`${fluxServer.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', model: 'flux2-tiny', sizes: ['64x64'] });
    expect((await fetch(`${fluxServer.url}/health/live`)).status).toBe(200);
    const models = await (await fetch(`${fluxServer.url}/v1/models`)).json();
    expect(models.data[0]).toMatchObject({ id: 'flux2-tiny', object: 'model', family: 'flux2' });
  });

  it('returns a PNG of the requested size; same seed -> identical bytes, other seed -> different', async () => {
    const a = await post(fluxServer.url, { ...req, seed: 7, size: '64x64' });
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ output_format: 'png', size: '64x64', seed: 7, seeds: [7], model: 'flux2-tiny', num_inference_steps: 2, guidance_scale: 4 });
    expect(a.json.created).toBeGreaterThan(1_600_000_000);
    expect(a.json.timings.inference_ms).toBeGreaterThan(0);
    const png = bytes(a.json.data[0]);
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 64, height: 64, channels: 3 });
    const b = await post(fluxServer.url, { ...req, seed: 7 });
    expect(bytes(b.json.data[0]).equals(png)).toBe(true);
    const c = await post(fluxServer.url, { ...req, seed: 8 });
    expect(bytes(c.json.data[0]).equals(png)).toBe(false);
  });

  it('n = 2: two different images, image k reproducible alone from seeds[k] = seed + k', async () => {
    const two = await post(fluxServer.url, { ...req, seed: 100, n: 2 });
    expect(two.status).toBe(200);
    expect(two.json.seeds).toEqual([100, 101]);
    expect(two.json.data).toHaveLength(2);
    const [i0, i1] = two.json.data.map(bytes);
    expect(i0.equals(i1)).toBe(false);
    const alone = await post(fluxServer.url, { ...req, seed: 101 });
    expect(bytes(alone.json.data[0]).equals(i1)).toBe(true);
  });

  it('no seed: a random one is returned and reproduces the image', async () => {
    const a = await post(fluxServer.url, req);
    expect(Number.isInteger(a.json.seed)).toBe(true);
    const again = await post(fluxServer.url, { ...req, seed: a.json.seed });
    expect(bytes(again.json.data[0]).equals(bytes(a.json.data[0]))).toBe(true);
  });

  it('webp, jpeg and the jpg alias decode to the requested size; compression changes jpeg bytes', async () => {
    for (const [asked, format] of [['webp', 'webp'], ['jpeg', 'jpeg'], ['jpg', 'jpeg']]) {
      const r = await post(fluxServer.url, { ...req, seed: 3, output_format: asked });
      expect(r.status).toBe(200);
      expect(r.json.output_format).toBe(format);
      expect(await sharp(bytes(r.json.data[0])).metadata()).toMatchObject({ format, width: 64, height: 64 });
    }
    const q100 = await post(fluxServer.url, { ...req, seed: 3, output_format: 'jpeg', output_compression: 100 });
    const q10 = await post(fluxServer.url, { ...req, seed: 3, output_format: 'jpeg', output_compression: 10 });
    expect(bytes(q10.json.data[0]).length).toBeLessThan(bytes(q100.json.data[0]).length);
  });

  it('response_format url writes to the storage folder and serves the file', async () => {
    const r = await post(fluxServer.url, { ...req, seed: 7, response_format: 'url' });
    expect(r.status).toBe(200);
    const url: string = r.json.data[0].url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/files\/[0-9a-f-]{36}\.png$/);
    const file = await fetch(url);
    expect(file.headers.get('content-type')).toBe('image/png');
    const seeded = await post(fluxServer.url, { ...req, seed: 7 });
    expect(Buffer.from(await file.arrayBuffer()).equals(bytes(seeded.json.data[0]))).toBe(true);
    expect((await fetch(`${fluxServer.url}/v1/files/../../etc/passwd`)).status).toBe(404);
  });

  it('echoes x-request-id and reports a revised prompt when [IMG] was removed', async () => {
    const r = await post(fluxServer.url, { ...req, seed: 1, prompt: 'a [IMG]fox' }, { 'content-type': 'application/json', 'x-request-id': 'req-42' });
    expect(r.headers.get('x-request-id')).toBe('req-42');
    expect(r.json.data[0].revised_prompt).toBe('a fox');
  });
});

describe('Qwen-Image tiny over HTTP', () => {
  it('negative_prompt runs true CFG (a different, reproducible image); needs guidance_scale > 1', async () => {
    const plain = await post(qwenServer.url, { ...req, seed: 5 });
    expect(plain.status).toBe(200);
    const cfg = await post(qwenServer.url, { ...req, seed: 5, negative_prompt: ' ' });
    expect(cfg.status).toBe(200);
    expect(bytes(cfg.json.data[0]).equals(bytes(plain.json.data[0]))).toBe(false);
    const again = await post(qwenServer.url, { ...req, seed: 5, negative_prompt: ' ' });
    expect(bytes(again.json.data[0]).equals(bytes(cfg.json.data[0]))).toBe(true);
    expect(await sharp(bytes(cfg.json.data[0])).metadata()).toMatchObject({ width: 64, height: 64 });
    const low = await post(qwenServer.url, { ...req, negative_prompt: ' ', guidance_scale: 1 });
    expect(low.status).toBe(400);
    expect(low.json.error.param).toBe('negative_prompt');
  });
});
