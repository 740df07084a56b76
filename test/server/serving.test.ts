/**
 * Serving behaviour of the real `serve` process (tiny Flux.2, CPU executor), over HTTP only:
 * same seed -> identical bytes; n = 3 -> three different images whose seeds each reproduce alone;
 * a burst of 50 concurrent requests against a queue of 4 gets only 200s and 429s (Retry-After);
 * a client that disconnects while queued is never run, one that disconnects while running stops at
 * its next step (both seen in the logs by request id and in /metrics); a request past its deadline
 * gets 504, running or still queued (a second process with --timeout-ms); /metrics in Prometheus
 * text with the request counts by code, the histograms and the gauges.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../runtime/paths.ts';
import { type ServeProcess, linesOf, metric, post, rawPost, spawnServe, waitFor, waitUntil } from './helpers.ts';

const FLUX = join(ROOT, 'models', 'flux2', 'tiny.pipeline.json');
const bytes = (item: { b64_json: string }) => Buffer.from(item.b64_json, 'base64');
const ROUTE = 'route="/v1/images/generations"';
let server: ServeProcess;
beforeAll(async () => {
  server = spawnServe([FLUX, '--port', '0', '--max-queued', '4']);
  await server.ready();
}, 60_000);
afterAll(async () => { await server.stop(); });

describe('seeds', () => {
  it('same seed -> identical bytes; n = 3 -> three different images, each reproduced alone from its seed', async () => {
    const a = await post(server.url, { prompt: 'a red fox', seed: 7, num_inference_steps: 2 });
    const b = await post(server.url, { prompt: 'a red fox', seed: 7, num_inference_steps: 2 });
    expect(a.status).toBe(200);
    expect(bytes(a.json.data[0]).equals(bytes(b.json.data[0]))).toBe(true);
    const three = await post(server.url, { prompt: 'a red fox', seed: 4_294_967_294, n: 3, num_inference_steps: 2 });
    expect(three.json.seeds).toEqual([4_294_967_294, 4_294_967_295, 0]);
    const imgs = three.json.data.map(bytes);
    expect(new Set(imgs.map((i: Buffer) => i.toString('base64'))).size).toBe(3);
    for (const [k, seed] of three.json.seeds.entries()) {
      const alone = await post(server.url, { prompt: 'a red fox', seed, num_inference_steps: 2 });
      expect(bytes(alone.json.data[0]).equals(imgs[k]), `seed ${seed}`).toBe(true);
    }
  });
});

describe('queue, cancellation', () => {
  it('a burst of 50 concurrent requests against a queue of 4: only 200 and 429 (with Retry-After), never 5xx', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => post(server.url, { prompt: `burst ${i}`, seed: i, num_inference_steps: 6 })));
    const codes = results.map((r) => r.status);
    expect(codes.filter((c) => c !== 200 && c !== 429)).toEqual([]);
    expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(5);
    expect(codes.filter((c) => c === 429).length).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.status === 429)) {
      expect(r.headers.get('retry-after')).toBe('5');
      expect(r.json.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full', param: null });
    }
  });

  it('a client that disconnects while queued is never run', async () => {
    const long = post(server.url, { prompt: 'long', seed: 1, num_inference_steps: 60 }, { 'content-type': 'application/json', 'x-request-id': 'long-1' });
    await waitFor(() => linesOf(server, 'long-1').some((l) => l.msg === 'generation started'), 'the long request to start', 30_000);
    const gone = rawPost(server.url, { prompt: 'gone', seed: 2, num_inference_steps: 2 }, { 'x-request-id': 'gone-queued' });
    await waitUntil(async () => (await metric(server.url, 'dc_queue_depth')) === 1, 'the request to queue');
    gone.destroy();
    await waitUntil(async () => (await metric(server.url, 'dc_cancelled_total{stage="queued"}')) === 1, 'the queued job to be dropped');
    expect(await metric(server.url, 'dc_queue_depth')).toBe(0);
    expect((await long).status).toBe(200);
    const log = linesOf(server, 'gone-queued');
    expect(log.some((l) => l.msg === 'client disconnected while queued; generation never ran')).toBe(true);
    expect(log.some((l) => l.msg === 'generation started' || l.msg === 'denoising step')).toBe(false);
  });

  it('a client that disconnects while running stops it at the next step', async () => {
    const gone = rawPost(server.url, { prompt: 'gone', seed: 3, num_inference_steps: 200 }, { 'x-request-id': 'gone-running' });
    await waitFor(() => linesOf(server, 'gone-running').some((l) => l.msg === 'denoising step'), 'the request to run', 30_000);
    gone.destroy();
    await waitFor(() => linesOf(server, 'gone-running').some((l) => l.msg === 'client disconnected; generation stopped'), 'the running job to stop', 30_000);
    const steps = linesOf(server, 'gone-running').filter((l) => l.msg === 'denoising step').map((l) => l.step as number);
    expect(Math.max(...steps)).toBeLessThan(200);
    expect(await metric(server.url, 'dc_cancelled_total{stage="running"}')).toBe(1);
    // The server is idle again and serves the next request.
    expect((await post(server.url, { prompt: 'after', seed: 5, num_inference_steps: 1 })).status).toBe(200);
  });
});

describe('/metrics', () => {
  it('Prometheus text: request counts by code, queue and inference histograms, queue depth, in-flight, no GPU memory on the CPU', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    for (const family of ['dc_requests_total counter', 'dc_queue_wait_seconds histogram', 'dc_inference_seconds histogram', 'dc_queue_depth gauge', 'dc_requests_in_flight gauge', 'dc_generations_running gauge']) {
      expect(text).toContain(`# TYPE ${family}`);
    }
    expect(await metric(server.url, `dc_requests_total{method="POST",${ROUTE},code="429"}`)).toBeGreaterThanOrEqual(1);
    expect(await metric(server.url, `dc_requests_total{method="POST",${ROUTE},code="200"}`)).toBeGreaterThanOrEqual(10);
    const started = await metric(server.url, 'dc_queue_wait_seconds_count');
    expect(started).toBe(await metric(server.url, 'dc_queue_wait_seconds_bucket{le="+Inf"}'));
    expect(await metric(server.url, 'dc_inference_seconds_count')).toBe(started);
    expect(await metric(server.url, 'dc_images_total')).toBeGreaterThanOrEqual(10);
    expect(await metric(server.url, 'dc_queue_depth')).toBe(0);
    expect(await metric(server.url, 'dc_requests_in_flight')).toBe(0);
    expect(await metric(server.url, 'dc_ready')).toBe(1);
    expect(await metric(server.url, 'dc_info{model="flux2-tiny",family="flux2",executor="cpu",synthetic_weights="no"}')).toBe(1);
    expect(text).not.toContain('dc_gpu_memory_bytes');
    expect(text).not.toContain('dc_gpu_energy_joules_total'); // the CPU executor: no board
  });
});

describe('deadline', () => {
  it('a running request past --timeout-ms gets 504 in the envelope and stops at its next step', async () => {
    const short = spawnServe([FLUX, '--port', '0', '--timeout-ms', '400']);
    try {
      await short.ready();
      const r = await post(short.url, { prompt: 'slow', seed: 1, num_inference_steps: 200 }, { 'content-type': 'application/json', 'x-request-id': 'slow' });
      expect(r.status).toBe(504);
      expect(r.json.error).toMatchObject({ type: 'timeout_error', code: 'timeout', param: null, message: 'generation did not finish within 400 ms' });
      await waitFor(() => linesOf(short, 'slow').some((l) => l.msg === 'deadline exceeded'), 'the deadline log line');
      expect(linesOf(short, 'slow').find((l) => l.msg === 'deadline exceeded')?.stage).toBe('running');
      const steps = linesOf(short, 'slow').filter((l) => l.msg === 'denoising step').map((l) => l.step as number);
      expect(Math.max(0, ...steps)).toBeLessThan(200);
      expect(await metric(short.url, 'dc_deadline_exceeded_total')).toBe(1);
      // (A deadline that passes while queued: test/server/queue.test.ts, where ordering is controlled.)
    } finally {
      await short.stop();
    }
  });
});
