/**
 * Request validation over HTTP against the real `serve` process (tiny Flux.2, CPU executor): each
 * malformed request — 40 classes — gets the right 4xx in the OpenAI envelope
 * {error:{message,type,param,code}} naming the field, and a valid request still succeeds after all
 * of them. /metrics counts them by status.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../runtime/paths.ts';
import { type ServeProcess, metric, post, spawnServe } from './helpers.ts';

let server: ServeProcess;
beforeAll(async () => {
  server = spawnServe([join(ROOT, 'models', 'flux2', 'tiny.pipeline.json'), '--port', '0']);
  await server.ready();
}, 60_000);
afterAll(async () => { await server.stop(); });

const ok = { prompt: 'a red fox', num_inference_steps: 1, seed: 1 };

// [case name, body, status, param, code]
const CASES: [string, Record<string, unknown>, number, string | null, string][] = [
  ['missing prompt', { n: 1 }, 400, 'prompt', 'missing_required_parameter'],
  ['empty prompt', { prompt: '' }, 400, 'prompt', 'empty_string'],
  ['blank prompt', { prompt: '   ' }, 400, 'prompt', 'empty_string'],
  ['huge prompt', { prompt: 'x'.repeat(4001) }, 400, 'prompt', 'string_above_max_length'],
  ['prompt not a string', { prompt: 42 }, 400, 'prompt', 'invalid_type'],
  ['n = 0', { ...ok, n: 0 }, 400, 'n', 'integer_below_min_value'],
  ['n = 11', { ...ok, n: 11 }, 400, 'n', 'integer_above_max_value'],
  ['n = 1.5', { ...ok, n: 1.5 }, 400, 'n', 'invalid_type'],
  ['n = "2"', { ...ok, n: '2' }, 400, 'n', 'invalid_type'],
  ['size "abc"', { ...ok, size: 'abc' }, 400, 'size', 'unsupported_value'],
  ['size "0x0"', { ...ok, size: '0x0' }, 400, 'size', 'unsupported_value'],
  ['size unsupported', { ...ok, size: '1024x1024' }, 400, 'size', 'unsupported_value'],
  ['size a number', { ...ok, size: 64 }, 400, 'size', 'invalid_type'],
  ['steps 0', { ...ok, num_inference_steps: 0 }, 400, 'num_inference_steps', 'integer_below_min_value'],
  ['steps -1', { ...ok, num_inference_steps: -1 }, 400, 'num_inference_steps', 'integer_below_min_value'],
  ['steps 1e9', { ...ok, num_inference_steps: 1e9 }, 400, 'num_inference_steps', 'integer_above_max_value'],
  ['steps "x"', { ...ok, num_inference_steps: 'x' }, 400, 'num_inference_steps', 'invalid_type'],
  ['guidance "x"', { ...ok, guidance_scale: 'x' }, 400, 'guidance_scale', 'invalid_type'],
  ['guidance negative', { ...ok, guidance_scale: -1 }, 400, 'guidance_scale', 'number_out_of_range'],
  ['seed negative', { ...ok, seed: -1 }, 400, 'seed', 'integer_below_min_value'],
  ['seed >= 2^32', { ...ok, seed: 2 ** 32 }, 400, 'seed', 'integer_above_max_value'],
  ['seed fractional', { ...ok, seed: 0.5 }, 400, 'seed', 'invalid_type'],
  ['unknown output_format', { ...ok, output_format: 'gif' }, 400, 'output_format', 'unsupported_value'],
  ['output_compression with png', { ...ok, output_compression: 50 }, 400, 'output_compression', 'unsupported_parameter'],
  ['output_compression 101', { ...ok, output_format: 'jpeg', output_compression: 101 }, 400, 'output_compression', 'integer_above_max_value'],
  ['transparent background', { ...ok, background: 'transparent', output_format: 'jpeg' }, 400, 'background', 'unsupported_value'],
  ['transparent with png too (no alpha)', { ...ok, background: 'transparent' }, 400, 'background', 'unsupported_value'],
  ['unknown background', { ...ok, background: 'green' }, 400, 'background', 'unsupported_value'],
  ['response_format url without storage', { ...ok, response_format: 'url' }, 400, 'response_format', 'unsupported_value'],
  ['response_format unknown', { ...ok, response_format: 'bytes' }, 400, 'response_format', 'unsupported_value'],
  ['negative_prompt on Flux.2', { ...ok, negative_prompt: 'blurry' }, 400, 'negative_prompt', 'unsupported_parameter'],
  ['unknown field', { ...ok, quality: 'hd' }, 400, 'quality', 'unknown_parameter'],
  ['unknown model', { ...ok, model: 'dall-e-3' }, 404, 'model', 'model_not_found'],
];

describe('POST /v1/images/generations validation', () => {
  it.each(CASES)('%s: 4xx naming the field', async (_name, body, status, param, code) => {
    const res = await post(server.url, body);
    expect(res.status).toBe(status);
    expect(res.json.error).toMatchObject({ param, code, type: status === 404 ? 'not_found_error' : 'invalid_request_error' });
    expect(typeof res.json.error.message).toBe('string');
    if (param) expect(res.json.error.message).toContain(param);
  });

  it('a body that is not an object', async () => {
    for (const body of ['[1,2]', '"a fox"', 'null', '3']) {
      const res = await post(server.url, body);
      expect(res.status, body).toBe(400);
      expect(res.json.error.code).toBe('invalid_type');
    }
  });

  it('invalid JSON (truncated, NaN guidance) -> 400; empty body -> 400', async () => {
    expect((await post(server.url, '{"prompt": ')).json.error).toMatchObject({ code: 'invalid_json', type: 'invalid_request_error' });
    const nan = await post(server.url, '{"prompt": "a fox", "guidance_scale": NaN}');
    expect(nan.status).toBe(400);
    expect(nan.json.error.code).toBe('invalid_json');
    expect((await post(server.url, '')).status).toBe(400);
  });

  it('wrong content type -> 415; body over the limit -> 413', async () => {
    const text = await post(server.url, 'prompt=a fox', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.json.error.code).toBe('unsupported_media_type');
    const form = await post(server.url, 'prompt=a', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    const big = await post(server.url, { prompt: 'a', user: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('request_too_large');
  });

  it('wrong method -> 405 with Allow; unknown path -> 404, both in the envelope', async () => {
    const get = await fetch(`${server.url}/v1/images/generations`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await get.json()).error.code).toBe('method_not_allowed');
    const nf = await fetch(`${server.url}/v1/images/edits`, { method: 'POST' });
    expect(nf.status).toBe(404);
    expect((await nf.json()).error.type).toBe('not_found_error');
  });

  it('accepts the OpenAI fields it honours, and succeeds after all the bad requests', async () => {
    const res = await post(server.url, { ...ok, model: 'flux2-tiny', n: null, size: '64x64', response_format: 'b64_json', user: 'u1', background: 'opaque', output_format: 'png', guidance_scale: 3.5 });
    expect(res.status).toBe(200);
    expect(res.json.data).toHaveLength(1);
    expect(res.json.guidance_scale).toBe(3.5);
    const auto = await post(server.url, { ...ok, size: 'auto', background: 'auto' });
    expect(auto.status).toBe(200);
    expect(auto.json.size).toBe('64x64');
    expect(auto.json.background).toBe('opaque');
    expect(await metric(server.url, 'dc_requests_total{method="POST",route="/v1/images/generations",code="400"}')).toBeGreaterThanOrEqual(CASES.filter((c) => c[2] === 400).length);
    expect(await metric(server.url, 'dc_requests_total{method="POST",route="/v1/images/generations",code="415"}')).toBe(2);
  });
});
