/**
 * Serving behaviour with a stub pipeline whose steps wait on a gate the test opens, so ordering is
 * controlled without sleeps: the bounded queue (429 + Retry-After), a client that disconnects
 * while queued is never run and one that disconnects while running stops at its next step, the
 * per-request deadline (504), readiness 503 while warming and draining, and drain finishing the
 * work in flight while refusing new requests.
 */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { GatedPipeline, type Running, metric, post, start, waitFor } from './helpers.ts';
import { JobQueue } from '../../runtime/server/queue.ts';
import { createServer } from '../../runtime/server/app.ts';

let server: Running | undefined;
afterEach(async () => { await server?.close(); server = undefined; });

/** Starts a POST whose connection the test can cut. */
function rawPost(url: string, body: unknown) {
  const u = new URL(`${url}/v1/images/generations`);
  const data = JSON.stringify(body);
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } });
  req.on('error', () => {});
  req.end(data);
  return req;
}

describe('queue and cancellation', () => {
  it('runs one job at a time; beyond maxQueued waiting it answers 429 with Retry-After', async () => {
    const p = new GatedPipeline();
    server = await start({ pipeline: p, warmup: false, maxQueued: 1 });
    const first = post(server.url, { prompt: 'a', seed: 1 });
    await waitFor(() => p.started.length === 1, 'first job to start');
    const second = post(server.url, { prompt: 'b', seed: 2 });
    await waitFor(() => server!.queue.depth === 1, 'second job to queue');
    const third = await post(server.url, { prompt: 'c', seed: 3 });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('5');
    expect(third.json.error).toMatchObject({ type: 'rate_limit_error', code: 'queue_full' });
    p.open();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
    expect(p.started).toEqual([1, 2]);
  });

  it('a client that disconnects while queued is never run', async () => {
    const p = new GatedPipeline();
    server = await start({ pipeline: p, warmup: false, maxQueued: 4 });
    const first = post(server.url, { prompt: 'a', seed: 1 });
    await waitFor(() => p.started.length === 1, 'first job to start');
    const gone = rawPost(server.url, { prompt: 'b', seed: 2 });
    await waitFor(() => server!.queue.depth === 1, 'second job to queue');
    gone.destroy();
    await waitFor(() => server!.queue.depth === 0, 'the queued job to be dropped');
    p.open();
    expect((await first).status).toBe(200);
    await server.queue.idle();
    expect(p.started).toEqual([1]);
  });

  it('a client that disconnects while running stops it at the next step', async () => {
    const p = new GatedPipeline();
    server = await start({ pipeline: p, warmup: false });
    const gone = rawPost(server.url, { prompt: 'a', seed: 1, num_inference_steps: 3 });
    await waitFor(() => p.started.length === 1, 'job to start');
    gone.destroy();
    await waitFor(() => p.aborted.includes(1), 'the server to see the disconnect');
    p.open();
    await server.queue.idle();
    expect(p.finished).toEqual([]);
  });

  it('a request whose deadline passes while it waits in the queue gets 504 and never runs', async () => {
    const p = new GatedPipeline();
    server = await start({ pipeline: p, warmup: false, requestTimeoutMs: 300 });
    const first = post(server.url, { prompt: 'a', seed: 1 });
    await waitFor(() => p.started.length === 1, 'first job to start');
    const queued = await post(server.url, { prompt: 'b', seed: 2 });
    expect(queued.status).toBe(504);
    expect(queued.json.error).toMatchObject({ type: 'timeout_error', code: 'timeout' });
    expect(server.metrics.deadline.get()).toBeGreaterThanOrEqual(1);
    p.open();
    await first;
    await server.queue.idle();
    expect(p.started).toEqual([1]);
  });

  it('a request past its deadline gets 504', async () => {
    const p = new GatedPipeline();
    server = await start({ pipeline: p, warmup: false, requestTimeoutMs: 50 });
    const res = post(server.url, { prompt: 'a', seed: 1 });
    await waitFor(() => p.started.length === 1, 'job to start');
    await waitFor(() => p.aborted.includes(1), 'the deadline to abort the job');
    p.open();
    const r = await res;
    expect(r.status).toBe(504);
    expect(r.json.error).toMatchObject({ type: 'timeout_error', code: 'timeout' });
  });
});

describe('readiness and drain', () => {
  it('is 503 until warm-up finishes, then 200', async () => {
    const p = new GatedPipeline();
    const s = createServer({ pipeline: p });
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const port = (s.app.server.address() as { port: number }).port;
    const url = `http://127.0.0.1:${port}`;
    expect((await fetch(`${url}/health/ready`)).status).toBe(503);
    const early = await post(url, { prompt: 'a' });
    expect(early.status).toBe(503);
    expect(early.json.error.code).toBe('not_ready');
    p.open();
    await s.ready;
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    await s.app.close();
  });

  it('is ready only after the pipeline has also warmed the modules the warm-up request did not reach', async () => {
    const p = new GatedPipeline();
    const order: string[] = [];
    let warmed!: () => void;
    const warm = new Promise<void>((r) => { warmed = r; });
    Object.assign(p, { warmUp: async () => { order.push('warmUp'); await warm; order.push('warmed'); } });
    const s = createServer({ pipeline: p });
    await s.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
    p.open();
    await waitFor(() => order.length === 1, 'warmUp to start');
    expect(p.started.length).toBeGreaterThan(0); // the warm-up request ran first
    expect((await fetch(`${url}/health/ready`)).status).toBe(503);
    warmed();
    await s.ready;
    expect(order).toEqual(['warmUp', 'warmed']);
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    await s.app.close();
  });

  it('drain: in-flight and queued requests finish with 200, new ones get 503, then it closes', async () => {
    const p = new GatedPipeline();
    server = await start({ pipeline: p, warmup: false });
    const inflight = post(server.url, { prompt: 'a', seed: 1 });
    await waitFor(() => p.started.length === 1, 'first job to start');
    const queued = post(server.url, { prompt: 'b', seed: 2 });
    await waitFor(() => server!.queue.depth === 1, 'second job to queue');
    const drained = server.drain();
    const refused = await post(server.url, { prompt: 'c', seed: 3 });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('draining');
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(503);
    p.open();
    expect((await inflight).status).toBe(200);
    expect((await queued).status).toBe(200);
    await drained;
    expect(p.finished).toEqual([1, 2]);
    server = undefined; // already closed
  });
});

describe('/metrics', () => {
  it('reports GPU memory when the executor knows it, with the executor kind', async () => {
    server = await start({ pipeline: new GatedPipeline(), warmup: false, executor: 'gpu', gpuMemoryBytes: () => 123_456, syntheticWeights: 42 });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toContain('# TYPE dc_gpu_memory_bytes gauge\ndc_gpu_memory_bytes 123456\n');
    expect(text).toContain('dc_info{model="stub",family="stub",executor="gpu",synthetic_weights="42"} 1');
    expect(text).not.toContain('dc_gpu_energy_joules_total'); // no energy reader: not exported
  });

  it('each step\'s device time, where the pipeline gives it: in the response\'s timings and the dc_step_device_seconds histogram', async () => {
    const p = new GatedPipeline();
    p.open();
    server = await start({ pipeline: p, warmup: false, executor: 'gpu' });
    expect(await metric(server.url, 'dc_step_device_seconds_count')).toBe(0);
    p.stepsMs = [236.04, 120.26];
    const r = await post(server.url, { prompt: 'a', seed: 1, n: 2 });
    expect(r.status).toBe(200);
    expect(r.json.timings.images.map((i: { step_device_ms: number[] }) => i.step_device_ms)).toEqual([[236, 120.3], [236, 120.3]]);
    expect(await metric(server.url, 'dc_step_device_seconds_count')).toBe(4);
    expect(await metric(server.url, 'dc_step_device_seconds_sum')).toBeCloseTo(2 * 0.3563, 6);
    expect(await metric(server.url, 'dc_step_device_seconds_bucket{le="0.125"}')).toBe(2);
    expect(await metric(server.url, 'dc_step_device_seconds_bucket{le="0.225"}')).toBe(2);
    expect(await metric(server.url, 'dc_step_device_seconds_bucket{le="0.25"}')).toBe(4);
    p.stepsMs = undefined; // a loop on the host: no device times, no field
    expect((await post(server.url, { prompt: 'b', seed: 2 })).json.timings.images[0]).not.toHaveProperty('step_device_ms');
  });

  it('exports the board\'s energy counter as a counter, read when scraped', async () => {
    let joules = 1000.5;
    server = await start({ pipeline: new GatedPipeline(), warmup: false, executor: 'gpu', gpuEnergyJoules: () => joules });
    expect(await (await fetch(`${server.url}/metrics`)).text()).toContain('# TYPE dc_gpu_energy_joules_total counter\ndc_gpu_energy_joules_total 1000.5\n');
    joules = 1175;
    expect(await (await fetch(`${server.url}/metrics`)).text()).toContain('\ndc_gpu_energy_joules_total 1175\n');
  });
});

describe('JobQueue', () => {
  it('rejects a job whose signal is already aborted and resolves idle() when empty', async () => {
    const q = new JobQueue(1);
    const ctl = new AbortController();
    ctl.abort(new Error('gone'));
    await expect(q.submit(async () => 1, ctl.signal)).rejects.toThrow('gone');
    await q.idle();
    expect(await q.submit(async () => 2, new AbortController().signal)).toBe(2);
  });
});
