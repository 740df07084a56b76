/**
 * `npx serve [ARTIFACT] [--port N] [--host H] [--storage DIR] [--max-queued N] [--timeout-ms N] [--executor auto|cpu|gpu]
 *            [--synthetic-weights SEED]`
 *
 * ARTIFACT is a pipeline artifact folder (written by `npx compile`: manifest.json, compiled modules,
 * ONNX graphs), or a pipeline description (.json, or a folder holding pipeline.json) such as
 * models/qwen_image/tiny.pipeline.json. With none it serves what `npx compile` with no argument
 * builds (artifacts/flux2-tiny-h100-fp8 under the working directory) and, when that does not exist
 * yet, the bundled tiny Flux.2 description, saying so. The executor comes from
 * executor/select.ts (CPU without a GPU, the compiled modules with one) and the log says which and
 * why. Listens on 127.0.0.1:8000 by default (--port 0 picks a free port; the log line "listening"
 * names it). SIGTERM/SIGINT: stop taking work (503), finish queued and running requests, exit 0.
 * --synthetic-weights SEED (GPU only) draws every learned weight of every compiled module from SEED,
 * so a structure-only artifact (from models/flux2/full.pipeline.json, say) serves for load tests: the images are
 * noise, and the log and /metrics (dc_info synthetic_weights) say so.
 * Bad arguments exit 2 with one line naming the flag; a manifest or graph that cannot load exits 1.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { cpuExecutorFactory } from '../executor/ort.ts';
import { EXECUTOR_PREFERENCES, type ExecutorPreference, selectExecutor } from '../executor/select.ts';
import { loadPipeline } from '../pipeline/load.ts';
import { BUNDLED_PIPELINE, DEFAULT_ARTIFACT, loadManifest } from '../pipeline/manifest.ts';
import { createServer } from './app.ts';
import { energyReader } from '../gpu/nvml.ts';

export interface CliOptions {
  /** Undefined: the default artifact, else the bundled description. */
  manifest?: string;
  port: number; host: string; storageDir?: string; maxQueued: number; timeoutMs: number; executor: ExecutorPreference;
  /** GPU only: every learned weight drawn from this seed. */
  syntheticWeights?: number;
}

const USAGE = 'usage: serve [ARTIFACT] [--port N] [--host H] [--storage DIR] [--max-queued N] [--timeout-ms N] [--executor auto|cpu|gpu] [--synthetic-weights SEED]';

export function parseArgs(argv: string[]): CliOptions {
  const o: CliOptions = { port: 8000, host: '127.0.0.1', maxQueued: 4, timeoutMs: 300_000, executor: 'auto' };
  let positional = 0;
  const int = (flag: string, v: string | undefined, min: number, max: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: expected an integer in [${min}, ${max}], found ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i];
    switch (a) {
      case '--port': o.port = int(a, value(), 0, 65535); break;
      case '--host': o.host = value() ?? ''; if (!o.host) throw new UsageError('--host: expected an address'); break;
      case '--storage': o.storageDir = value(); if (!o.storageDir) throw new UsageError('--storage: expected a folder'); break;
      case '--max-queued': o.maxQueued = int(a, value(), 0, 10_000); break;
      case '--timeout-ms': o.timeoutMs = int(a, value(), 1, 86_400_000); break;
      case '--synthetic-weights': o.syntheticWeights = int(a, value(), 0, 0xffffffff); break;
      case '--executor': {
        const v = value();
        if (!EXECUTOR_PREFERENCES.includes(v as ExecutorPreference)) throw new UsageError(`--executor: expected one of ${EXECUTOR_PREFERENCES.join(', ')}, found ${v ?? 'nothing'}`);
        o.executor = v as ExecutorPreference;
        break;
      }
      case '-h': case '--help': throw new UsageError(USAGE, 0);
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown flag ${a}`);
        if (positional++) throw new UsageError(`expected one ARTIFACT, found a second: ${a}`);
        o.manifest = a;
    }
  }
  return o;
}

/** What to serve: the ARTIFACT given, else the default artifact when it exists, else the bundled description. */
export function resolveServed(manifest: string | undefined, cwd = process.cwd()): { path: string; note?: string } {
  if (manifest !== undefined) return { path: resolve(cwd, manifest) };
  const artifact = resolve(cwd, DEFAULT_ARTIFACT);
  if (existsSync(artifact)) return { path: artifact, note: `serving the artifact \`npx compile\` built: ${artifact}` };
  return { path: BUNDLED_PIPELINE, note: `no artifact at ${artifact} (run \`npx compile\` to build it); serving the bundled tiny Flux.2 graphs from ${BUNDLED_PIPELINE}` };
}

class UsageError extends Error {
  constructor(message: string, readonly exitCode = 2) { super(message); }
}

export async function main(argv: string[]): Promise<void> {
  let o: CliOptions;
  try {
    o = parseArgs(argv);
  } catch (e) {
    const u = e as UsageError;
    (u.exitCode ? process.stderr : process.stdout).write(`serve: ${u.message}\n`);
    process.exitCode = u.exitCode;
    return;
  }
  const started = performance.now();
  const since = (t: number) => Math.round(performance.now() - t) / 1000;
  const served = resolveServed(o.manifest);
  let pipeline, executor;
  try {
    const m = loadManifest(served.path);
    executor = await selectExecutor(m, { prefer: o.executor, syntheticWeights: o.syntheticWeights });
    try {
      pipeline = await loadPipeline(m, executor.factory);
    } catch (e) {
      // auto: compiled modules that do not load on this GPU (pending kernels, another target) fall back to the CPU.
      // Not with synthetic weights: the CPU executor has none to run.
      if (executor.kind !== 'gpu' || o.executor === 'gpu' || o.syntheticWeights !== undefined) throw e;
      executor = { kind: 'cpu' as const, factory: cpuExecutorFactory, reason: `a GPU is present, but the compiled modules did not load (${(e as Error).message.split('\n')[0]}): using the CPU executor (onnxruntime-node)` };
      pipeline = await loadPipeline(m, executor.factory);
    }
  } catch (e) {
    process.stderr.write(`serve: ${(e as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  const loadSeconds = since(started), warming = performance.now(); // warm-up starts with the server
  const server = createServer({
    pipeline, storageDir: o.storageDir, maxQueued: o.maxQueued, requestTimeoutMs: o.timeoutMs, logger: { level: 'info' }, executor: executor.kind,
    syntheticWeights: o.syntheticWeights,
    gpuMemoryBytes: () => pipeline.deviceBytes?.(),
    gpuEnergyJoules: energyReader(pipeline.deviceBusId?.()),
  });
  const log = server.app.log;
  if (served.note) log.info({ manifest: served.path }, served.note);
  log.info({ executor: executor.kind, graphs: pipeline.executors }, executor.reason);
  log.info({ model: pipeline.name, family: pipeline.family, manifest: served.path, sizes: pipeline.sizes.map((s) => `${s.width}x${s.height}`), loadSeconds }, 'pipeline loaded');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, queued: server.queue.depth, running: server.queue.busy }, 'draining');
    // pino's flush(cb) writes out buffered lines before the process ends.
    const flush = (log as unknown as { flush?: (cb: () => void) => void }).flush?.bind(log);
    const exit = (code: number) => (flush ? flush(() => process.exit(code)) : process.exit(code));
    server.drain().then(() => pipeline.release()).then(
      () => { log.info('drained; exiting'); exit(0); },
      (e) => { log.error({ err: e }, 'drain failed'); exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    const address = await server.app.listen({ port: o.port, host: o.host });
    log.info({ address }, 'listening');
    await server.ready;
  } catch (e) {
    log.error({ error: (e as Error).message }, 'could not start');
    process.stderr.write(`serve: ${(e as Error).message}\n`);
    await server.ready.catch(() => {}); // warm-up may still be using the executors
    await server.app.close();
    await pipeline.release();
    process.exitCode = 1;
    return;
  }
  log.info({ warmUpSeconds: since(warming), startSeconds: since(started) }, 'ready');
}
