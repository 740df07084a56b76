/**
 * The official `openai` npm client, unchanged, against real `serve` processes (the tiny Flux.2 and
 * Qwen-Image pipelines on the CPU executor): images.generate with b64_json in each output format
 * decodes (sharp) to the requested size; the extra fields this server honours (seed,
 * num_inference_steps, negative_prompt) pass through the client as body fields; a 400 surfaces as
 * the client's BadRequestError with `param`.
 */
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../runtime/paths.ts';
import { type ServeProcess, spawnServe } from './helpers.ts';

let fluxServer: ServeProcess, qwenServer: ServeProcess;
beforeAll(async () => {
  fluxServer = spawnServe([join(ROOT, 'models', 'flux2', 'tiny.pipeline.json'), '--port', '0']);
  qwenServer = spawnServe([join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'), '--port', '0']);
  await Promise.all([fluxServer.ready(), qwenServer.ready()]);
}, 60_000);
afterAll(async () => { await Promise.all([fluxServer.stop(), qwenServer.stop()]); });

type Params = OpenAI.Images.ImageGenerateParamsNonStreaming;
/** The client's size union lists OpenAI's own sizes; the tiny pipelines serve 64x64. */
const params = (p: Omit<Params, 'size'> & { size?: string } & Record<string, unknown>) => p as unknown as Params;
const client = (s: ServeProcess) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'not-checked', maxRetries: 0 });

describe('openai npm client', () => {
  it('generates from the tiny Flux.2 pipeline in png, webp and jpeg', async () => {
    for (const output_format of ['png', 'webp', 'jpeg'] as const) {
      const res = await client(fluxServer).images.generate(params({
        model: 'flux2-tiny', prompt: 'a red fox', size: '64x64', response_format: 'b64_json', output_format, seed: 1, num_inference_steps: 2,
      }));
      expect(res.data).toHaveLength(1);
      const meta = await sharp(Buffer.from(res.data![0].b64_json!, 'base64')).metadata();
      expect(meta).toMatchObject({ format: output_format, width: 64, height: 64 });
    }
  });

  it('generates from the tiny Qwen-Image pipeline in png, webp and jpeg; with a negative prompt (true CFG), n = 2', async () => {
    for (const output_format of ['png', 'webp', 'jpeg'] as const) {
      const res = await client(qwenServer).images.generate(params({ prompt: 'a red fox', size: '64x64', output_format, seed: 3, num_inference_steps: 2 }));
      expect(await sharp(Buffer.from(res.data![0].b64_json!, 'base64')).metadata()).toMatchObject({ format: output_format, width: 64, height: 64 });
    }
    const res = await client(qwenServer).images.generate(params({ prompt: 'a red fox', n: 2, negative_prompt: ' ', num_inference_steps: 2 }));
    expect(res.data).toHaveLength(2);
    for (const d of res.data!) expect(await sharp(Buffer.from(d.b64_json!, 'base64')).metadata()).toMatchObject({ width: 64, height: 64 });
  });

  it('a rejected request is a BadRequestError naming the parameter', async () => {
    const err = await client(fluxServer).images.generate(params({ prompt: 'a fox', size: '1024x1024' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('size');
    expect((err as Error).message).toContain('supported sizes: 64x64');
  });
});
