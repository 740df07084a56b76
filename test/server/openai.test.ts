/**
 * The official `openai` npm client, unchanged, against the server (tiny Flux.2 and Qwen-Image on
 * the CPU executor): images.generate with b64_json in each output format decodes to the requested
 * size; the extra fields this server honours (seed, num_inference_steps, negative_prompt) pass
 * through the client as body fields; a 400 surfaces as the client's BadRequestError with `param`.
 */
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../runtime/pipeline/types.ts';
import { type Running, loadTiny, start } from './helpers.ts';

let flux: Pipeline, qwen: Pipeline, fluxServer: Running, qwenServer: Running;
beforeAll(async () => {
  [flux, qwen] = await Promise.all([loadTiny('flux2'), loadTiny('qwen_image')]);
  [fluxServer, qwenServer] = await Promise.all([start({ pipeline: flux, warmup: false }), start({ pipeline: qwen, warmup: false })]);
});
afterAll(async () => {
  await Promise.all([fluxServer.close(), qwenServer.close()]);
  await Promise.all([flux.release(), qwen.release()]);
});

type Params = OpenAI.Images.ImageGenerateParamsNonStreaming;
/** The client's size union lists OpenAI's own sizes; the tiny pipelines serve 64x64. */
const params = (p: Omit<Params, 'size'> & { size?: string } & Record<string, unknown>) => p as unknown as Params;
const client = (s: Running) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'not-checked', maxRetries: 0 });

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

  it('generates from the tiny Qwen-Image pipeline with a negative prompt, n = 2', async () => {
    const res = await client(qwenServer).images.generate(params({ prompt: 'a red fox', n: 2, negative_prompt: ' ', num_inference_steps: 2 }));
    expect(res.data).toHaveLength(2);
    for (const d of res.data!) expect((await sharp(Buffer.from(d.b64_json!, 'base64')).metadata()).width).toBe(64);
  });

  it('a rejected request is a BadRequestError naming the parameter', async () => {
    const err = await client(fluxServer).images.generate(params({ prompt: 'a fox', size: '1024x1024' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('size');
    expect((err as Error).message).toContain('supported sizes: 64x64');
  });
});
