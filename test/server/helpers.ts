/**
 * Helpers for the server suites: start the app on 127.0.0.1 with an ephemeral port over the real
 * tiny pipelines (or a controllable stub), POST JSON, wait for a condition (polling, bounded), and
 * a stub Pipeline whose generations wait on a gate the test opens.
 */
import { join } from 'node:path';
import { cpuExecutorFactory } from '../../runtime/executor/ort.ts';
import { ROOT } from '../../runtime/paths.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { type GenerateRequest, type GeneratedImage, type Pipeline, throwIfAborted } from '../../runtime/pipeline/types.ts';
import { type ImageServer, type ServerOptions, createServer } from '../../runtime/server/app.ts';

export const tinyManifest = (family: 'flux2' | 'qwen_image') => join(ROOT, 'models', family, 'tiny.pipeline.json');
export const loadTiny = (family: 'flux2' | 'qwen_image') => loadPipeline(tinyManifest(family), cpuExecutorFactory);

export interface Running extends ImageServer { url: string; close(): Promise<void> }

export async function start(opts: ServerOptions): Promise<Running> {
  const server = createServer(opts);
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  await server.ready;
  const addr = server.app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no TCP address');
  return { ...server, url: `http://127.0.0.1:${addr.port}`, close: () => server.app.close() };
}

export async function post(url: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${url}/v1/images/generations`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, json, headers: res.headers };
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A pipeline whose generate() blocks until `open()`; records the seeds it ran. */
export class GatedPipeline implements Pipeline {
  readonly family = 'stub';
  readonly name = 'stub';
  readonly sizes = [{ width: 8, height: 8 }];
  readonly defaults = { steps: 2, guidanceScale: 1 };
  readonly supportsNegativePrompt = false;
  readonly executors = ['stub'];
  started: number[] = [];
  /** Seeds whose request signal has aborted (client gone or deadline). */
  aborted: number[] = [];
  finished: number[] = [];
  private gate!: Promise<void>;
  private unblock!: () => void;
  constructor() { this.shut(); }
  shut(): void { this.gate = new Promise((r) => { this.unblock = r; }); }
  open(): void { this.unblock(); }
  async generate(req: GenerateRequest): Promise<GeneratedImage> {
    this.started.push(req.seed);
    req.signal?.addEventListener('abort', () => this.aborted.push(req.seed), { once: true });
    for (let s = 1; s <= req.steps; s++) {
      await this.gate;
      throwIfAborted(req.signal);
      req.onStep?.(s, req.steps, new Float32Array(0));
    }
    this.finished.push(req.seed);
    return { rgb: new Uint8Array(8 * 8 * 3).fill(req.seed % 256), width: 8, height: 8, seed: req.seed, timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0 } };
  }
  async release(): Promise<void> {}
}
