/**
 * The HTTP server (fastify): OpenAI-compatible image generation over a loaded Pipeline.
 *
 *   POST /v1/images/generations  validate (validate.ts) -> queue (queue.ts) -> n images, image k
 *                                from seed (seed + k) mod 2^32 -> encode (sharp) -> JSON
 *   GET  /v1/models              the one model served
 *   GET  /health/live            200 while the process runs
 *   GET  /health/ready, /health  200 once loaded and warmed up; 503 before that and while draining
 *   GET  /metrics                Prometheus text (metrics.ts)
 *   GET  /v1/files/:name         images written for response_format "url" (only with a storage dir)
 *
 * Every error leaves in the OpenAI envelope (errors.ts). A client that disconnects aborts its
 * job: a queued job never runs, a running one stops at its next step. Request ids come from the
 * x-request-id header (or are generated) and are echoed back; logs are fastify's JSON lines, one
 * per request start, denoising step, cancellation and completion, each with the request id.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { MIME, encodeImage } from '../pipeline/image.ts';
import { imageSeed, randomSeed } from '../pipeline/noise.ts';
import { AbortedError, type Pipeline, type StageTimings, formatSize } from '../pipeline/types.ts';
import { ApiError, fromFastifyError } from './errors.ts';
import { ServerMetrics } from './metrics.ts';
import { JobQueue, QueueFullError } from './queue.ts';
import { DEFAULT_LIMITS, type ImageRequest, type Limits, validateImageRequest } from './validate.ts';

export interface ServerOptions {
  pipeline: Pipeline;
  /** Folder for response_format "url" images; without it "url" is a 400. */
  storageDir?: string;
  /** Requests allowed to wait behind the running one (429 beyond). */
  maxQueued?: number;
  /** Per-request deadline, queue wait included (504 beyond). */
  requestTimeoutMs?: number;
  /** Body size limit in bytes (413 beyond). */
  bodyLimit?: number;
  limits?: Partial<Limits>;
  logger?: FastifyServerOptions['logger'];
  /** Run one 1-step generation per size before reporting ready (default true). */
  warmup?: boolean;
  /** The executor kind, for dc_info in /metrics. */
  executor?: string;
  /** The seed when the executor draws synthetic weights (dc_info's synthetic_weights label). */
  syntheticWeights?: number;
  /** GPU memory in use, when the executor knows it (dc_gpu_memory_bytes). */
  gpuMemoryBytes?: () => number | undefined;
  /** The board's energy counter in joules (NVML), for dc_gpu_energy_joules_total; absent: not exported. */
  gpuEnergyJoules?: () => number | undefined;
}

export interface ImageServer {
  app: FastifyInstance;
  queue: JobQueue;
  metrics: ServerMetrics;
  /** Resolves when warm-up is done (ready). */
  ready: Promise<void>;
  /** Stop taking work (503), wait for queued and running jobs, close the server. */
  drain(): Promise<void>;
}

export function createServer(opts: ServerOptions): ImageServer {
  const { pipeline } = opts;
  const limits: Limits = { ...DEFAULT_LIMITS, ...opts.limits, urlOutput: opts.storageDir !== undefined };
  const queue = new JobQueue(opts.maxQueued ?? 4);
  const timeoutMs = opts.requestTimeoutMs ?? 300_000;
  let state: 'warming' | 'ready' | 'draining' = 'warming';
  if (opts.storageDir) mkdirSync(opts.storageDir, { recursive: true });

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
  });

  // JSON only: fastify's text/plain parser would hand a string to the handler; without it any
  // other content type is fastify's 415 (FST_ERR_CTP_INVALID_MEDIA_TYPE).
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof AbortedError) {
      // The client has gone; nobody reads this (499: nginx's "client closed request").
      void reply.code(499).send(new ApiError(499, 'client closed the request', null, 'cancelled').body());
      return;
    }
    const api = err instanceof ApiError ? err : fromFastifyError(err as Error & { statusCode?: number; code?: string });
    if (api.status >= 500) req.log.error({ err }, 'request failed');
    void reply.code(api.status).headers(api.headers).send(api.body());
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send(new ApiError(404, `no route ${req.method} ${req.url}`, null, 'not_found', 'not_found_error').body());
  });
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
    // While draining, close each connection after its response so app.close() need not wait for
    // keep-alive timeouts.
    if (state === 'draining') reply.header('connection', 'close');
  });

  // Generation handlers still running (their responses not yet handed to fastify); drain waits for 0.
  let active = 0;
  let onQuiet: (() => void)[] = [];
  const quiet = () => (active === 0 ? Promise.resolve() : new Promise<void>((r) => onQuiet.push(r)));
  const leave = () => {
    if (--active === 0) { const q = onQuiet; onQuiet = []; for (const f of q) f(); }
  };

  const metrics = new ServerMetrics();
  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', code: String(reply.statusCode) });
  });
  metrics.gauge({ name: 'dc_queue_depth', help: 'Generations waiting in the queue.', read: () => queue.depth });
  metrics.gauge({ name: 'dc_generations_running', help: 'Generations running now (0 or 1).', read: () => (queue.busy ? 1 : 0) });
  metrics.gauge({ name: 'dc_requests_in_flight', help: 'Generation requests accepted and not yet answered.', read: () => active });
  metrics.gauge({ name: 'dc_ready', help: '1 when loaded, warmed up and not draining.', read: () => (state === 'ready' ? 1 : 0) });
  metrics.gauge({ name: 'dc_gpu_memory_bytes', help: 'GPU memory in use by the executor.', read: () => opts.gpuMemoryBytes?.() });
  metrics.gauge({ name: 'dc_gpu_energy_joules_total', help: 'Energy the GPU board has used since its driver loaded (NVML).', read: () => opts.gpuEnergyJoules?.(), type: 'counter' });
  metrics.gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory of the server process.', read: () => process.memoryUsage.rss() });
  metrics.gauge({ name: 'dc_info', help: 'The model served.', read: () => 1, labels: { model: pipeline.name, family: pipeline.family, executor: opts.executor ?? 'unknown', synthetic_weights: opts.syntheticWeights === undefined ? 'no' : String(opts.syntheticWeights) } });
  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render()));

  app.get('/health/live', async () => ({ status: 'live' }));
  const readiness = async (_req: FastifyRequest, reply: FastifyReply) => {
    if (state !== 'ready') return reply.code(503).send({ status: state });
    return { status: 'ready', model: pipeline.name, sizes: pipeline.sizes.map(formatSize) };
  };
  app.get('/health/ready', readiness);
  app.get('/health', readiness);
  app.get('/v1/models', async () => ({
    object: 'list',
    data: [{ id: pipeline.name, object: 'model', created: 0, owned_by: 'local', family: pipeline.family, sizes: pipeline.sizes.map(formatSize) }],
  }));

  app.route({
    method: ['GET', 'PUT', 'DELETE', 'PATCH'], url: '/v1/images/generations',
    handler: async (req, reply) => reply.code(405).header('allow', 'POST')
      .send(new ApiError(405, `method ${req.method} is not allowed; use POST`, null, 'method_not_allowed').body()),
  });

  app.post('/v1/images/generations', async (req, reply) => {
    active++;
    try {
      return await generate(req, reply);
    } finally {
      leave();
    }
  });

  async function generate(req: FastifyRequest, reply: FastifyReply) {
    if (state === 'draining') throw new ApiError(503, 'server is shutting down', null, 'draining', 'unavailable_error');
    if (state !== 'ready') throw new ApiError(503, 'model is still loading', null, 'not_ready', 'unavailable_error', { 'retry-after': '1' });
    const r = validateImageRequest(req.body, pipeline, limits);
    const seed = r.seed ?? randomSeed();
    const seeds = Array.from({ length: r.n }, (_, k) => imageSeed(seed, k));

    const client = new AbortController();
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) client.abort(new AbortedError()); });
    const signal = AbortSignal.any([client.signal, AbortSignal.timeout(timeoutMs)]);
    const queuedAt = performance.now();
    let startedAt: number | undefined;
    let images;
    try {
      images = await queue.submit(async () => {
        startedAt = performance.now();
        metrics.queueWait.observe((startedAt - queuedAt) / 1000);
        req.log.info({ n: r.n, steps: r.steps, size: formatSize(r.size), seeds }, 'generation started');
        const out = [];
        for (const [k, s] of seeds.entries()) {
          out.push(await pipeline.generate({
            prompt: r.prompt, negativePrompt: r.negativePrompt, size: r.size, steps: r.steps, guidanceScale: r.guidanceScale, seed: s, signal,
            onStep: (step, total) => { metrics.steps.inc(); req.log.info({ image: k, step, total }, 'denoising step'); },
          }));
        }
        return out;
      }, signal);
    } catch (e) {
      if (startedAt !== undefined) metrics.inference.observe((performance.now() - startedAt) / 1000);
      if (e instanceof QueueFullError) throw new ApiError(429, `too many requests: ${queue.maxQueued} already waiting`, null, 'queue_full', 'rate_limit_error', { 'retry-after': '5' });
      const stage = startedAt === undefined ? 'queued' : 'running';
      if (client.signal.aborted) {
        metrics.cancelled.inc({ stage });
        req.log.info({ stage }, stage === 'queued' ? 'client disconnected while queued; generation never ran' : 'client disconnected; generation stopped');
        throw new AbortedError();
      }
      if (signal.aborted) {
        metrics.deadline.inc();
        req.log.info({ stage, timeoutMs }, 'deadline exceeded');
        throw new ApiError(504, `generation did not finish within ${timeoutMs} ms`, null, 'timeout', 'timeout_error');
      }
      throw e;
    }
    const inferenceMs = performance.now() - startedAt!;
    metrics.inference.observe(inferenceMs / 1000);
    metrics.images.inc({}, images.length);
    for (const img of images) for (const ms of img.timings.stepsMs ?? []) metrics.stepDevice.observe(ms / 1000);
    const data = [];
    for (const img of images) {
      const bytes = await encodeImage(img.rgb, img.width, img.height, { format: r.outputFormat, compression: r.outputCompression });
      data.push({ ...await deliver(bytes, r, req), ...(img.revisedPrompt !== undefined ? { revised_prompt: img.revisedPrompt } : {}) });
    }
    return {
      created: Math.floor(Date.now() / 1000),
      data,
      model: pipeline.name,
      background: r.background,
      output_format: r.outputFormat,
      size: formatSize(r.size),
      num_inference_steps: r.steps,
      guidance_scale: r.guidanceScale,
      seed,
      seeds,
      timings: { queue_ms: round(startedAt! - queuedAt), inference_ms: round(inferenceMs), images: images.map((i) => mapTimings(i.timings)) },
    };
  }

  async function deliver(bytes: Buffer, r: ImageRequest, req: FastifyRequest): Promise<{ b64_json: string } | { url: string }> {
    if (r.responseFormat === 'b64_json') return { b64_json: bytes.toString('base64') };
    const name = `${randomUUID()}.${r.outputFormat}`;
    writeFileSync(join(opts.storageDir!, name), bytes);
    return { url: `${req.protocol}://${req.host}/v1/files/${name}` };
  }

  if (opts.storageDir) {
    app.get<{ Params: { name: string } }>('/v1/files/:name', async (req, reply) => {
      const m = /^[0-9a-f-]{36}\.(png|webp|jpeg)$/.exec(req.params.name);
      const file = m && join(opts.storageDir!, req.params.name);
      if (!m || !file || !existsSync(file)) throw new ApiError(404, `no file '${req.params.name}'`, null, 'not_found', 'not_found_error');
      return reply.type(MIME[m[1] as 'png']).send(readFileSync(file));
    });
  }

  const ready = (async () => {
    if (opts.warmup !== false) {
      for (const size of pipeline.sizes) {
        await pipeline.generate({ prompt: 'warm-up', size, steps: 1, guidanceScale: pipeline.defaults.guidanceScale, seed: 0 });
        app.log.info({ size: formatSize(size) }, 'warmed up');
      }
      // Every module once, those the request above did not reach included (true CFG's batch-2 module, the transformer for other text lengths).
      if (pipeline.warmUp) {
        await pipeline.warmUp();
        app.log.info('warmed up every module');
      }
    }
    if (state === 'warming') state = 'ready';
  })();
  ready.catch((err: unknown) => app.log.error({ err }, 'warm-up failed; staying not ready'));

  return {
    app, queue, metrics, ready,
    async drain() {
      state = 'draining';
      await queue.idle();
      await quiet();
      await app.close();
    },
  };
}

const round = (ms: number) => Math.round(ms * 10) / 10;
const mapTimings = (t: StageTimings) => ({
  encode_ms: round(t.encodeMs), denoise_ms: round(t.denoiseMs), decode_ms: round(t.decodeMs),
  ...(t.stepsMs ? { step_device_ms: t.stepsMs.map(round) } : {}),
});
