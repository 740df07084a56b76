/**
 * Helpers for the server suites: start the real `serve` process (bin/serve.mjs) and read its JSON
 * log lines; start the app in-process on 127.0.0.1 with an ephemeral port over the real tiny
 * pipelines (or a controllable stub); POST JSON; wait for a condition (polling, bounded); a stub
 * Pipeline whose generations wait on a gate the test opens.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuExecutorFactory } from '../../runtime/executor/ort.ts';
import { ROOT } from '../../runtime/paths.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { type GenerateRequest, type GeneratedImage, type Pipeline, throwIfAborted } from '../../runtime/pipeline/types.ts';
import { type ImageServer, type ServerOptions, createServer } from '../../runtime/server/app.ts';

export const tinyManifest = (family: 'flux2' | 'qwen_image') => join(ROOT, 'models', family, 'tiny.pipeline.json');
export const loadTiny = (family: 'flux2' | 'qwen_image') => loadPipeline(tinyManifest(family), cpuExecutorFactory);

export const SERVE_BIN = join(ROOT, 'bin', 'serve.mjs');

export interface ServeProcess {
  proc: ChildProcessWithoutNullStreams;
  /** Parsed JSON log lines (stdout), in order; non-JSON lines as {msg}. */
  lines: Record<string, any>[];
  stderr: () => string;
  exited: Promise<number | null>;
  /** Set once the 'listening' line appeared. */
  url: string;
  /** Waits for 'ready' (or the process to end, which throws with its stderr). */
  ready: () => Promise<void>;
  stop: () => Promise<void>;
}

/** Spawns `serve ARGS` (cwd: a fresh temporary folder unless given) and collects its log. */
export function spawnServe(args: string[], cwd = mkdtempSync(join(tmpdir(), 'serve-cwd-'))): ServeProcess {
  const proc = spawn(process.execPath, [SERVE_BIN, ...args], { cwd });
  const lines: Record<string, any>[] = [];
  let buf = '', stderr = '';
  const s: ServeProcess = {
    proc, lines, stderr: () => stderr, url: '',
    exited: new Promise((r) => proc.on('exit', (code) => r(code))),
    ready: async () => {
      await waitFor(() => lines.some((l) => l.msg === 'ready') || proc.exitCode !== null, 'the server to be ready', 60_000);
      if (!lines.some((l) => l.msg === 'ready')) throw new Error(`serve exited ${proc.exitCode}: ${stderr}`);
    },
    stop: async () => { if (proc.exitCode === null) { proc.kill('SIGKILL'); await s.exited; } },
  };
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let parsed: Record<string, any>;
      try { parsed = JSON.parse(line); } catch { parsed = { msg: line }; }
      lines.push(parsed);
      if (parsed.msg === 'listening') s.url = parsed.address;
    }
  });
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return s;
}

/** Log lines of one request (fastify's reqId is the x-request-id the test sent). */
export const linesOf = (s: ServeProcess, reqId: string) => s.lines.filter((l) => l.reqId === reqId);

/** Starts a POST whose connection the test can cut (destroy()). */
export function rawPost(url: string, body: unknown, headers: Record<string, string> = {}) {
  const u = new URL(`${url}/v1/images/generations`);
  const data = JSON.stringify(body);
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers } });
  req.on('error', () => {});
  req.end(data);
  return req;
}

/** The value of one sample in Prometheus text ('name{labels}' exactly as rendered), or undefined. */
export async function metric(url: string, sample: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

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

/** waitFor with an async condition (e.g. a /metrics sample). */
export async function waitUntil(cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
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
  /** Each step's device time to report (StageTimings.stepsMs, as a pipeline whose loop runs on a GPU does); none by default. */
  stepsMs?: number[];
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
    return { rgb: new Uint8Array(8 * 8 * 3).fill(req.seed % 256), latents: new Float32Array(0), width: 8, height: 8, seed: req.seed, timings: { encodeMs: 0, denoiseMs: 0, decodeMs: 0, ...(this.stepsMs ? { stepsMs: this.stepsMs } : {}) } };
  }
  async release(): Promise<void> {}
}
