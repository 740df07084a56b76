/**
 * `npx serve [ARTIFACT] [--port N] [--host H] [--storage DIR] [--max-queued N] [--timeout-ms N]`
 *
 * ARTIFACT is a pipeline manifest (a .json file, or a folder holding pipeline.json); with none it
 * serves the bundled tiny Flux.2 pipeline (models/flux2/tiny.pipeline.json). The executor comes
 * from executor/select.ts (today always the CPU one, onnxruntime-node) and the log says which and
 * why. Listens on 127.0.0.1:8000 by default (--port 0 picks a free port; the log line "listening" names it).
 * SIGTERM/SIGINT: stop taking work (503), finish queued and running requests, exit 0.
 * Bad arguments exit 2 with one line naming the flag; a manifest or graph that cannot load exits 1.
 */
import { join } from 'node:path';
import { ROOT } from '../paths.ts';
import { selectExecutor } from '../executor/select.ts';
import { loadPipeline } from '../pipeline/load.ts';
import { createServer } from './app.ts';

export const DEFAULT_MANIFEST = join(ROOT, 'models', 'flux2', 'tiny.pipeline.json');

export interface CliOptions { manifest: string; port: number; host: string; storageDir?: string; maxQueued: number; timeoutMs: number }

export function parseArgs(argv: string[]): CliOptions {
  const o: CliOptions = { manifest: DEFAULT_MANIFEST, port: 8000, host: '127.0.0.1', maxQueued: 4, timeoutMs: 300_000 };
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
      case '-h': case '--help': throw new UsageError('usage: serve [ARTIFACT] [--port N] [--host H] [--storage DIR] [--max-queued N] [--timeout-ms N]', 0);
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown flag ${a}`);
        if (positional++) throw new UsageError(`expected one ARTIFACT, found a second: ${a}`);
        o.manifest = a;
    }
  }
  return o;
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
  const executor = selectExecutor();
  let pipeline;
  try {
    pipeline = await loadPipeline(o.manifest, executor.factory);
  } catch (e) {
    process.stderr.write(`serve: ${(e as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  const server = createServer({ pipeline, storageDir: o.storageDir, maxQueued: o.maxQueued, requestTimeoutMs: o.timeoutMs, logger: { level: 'info' } });
  const log = server.app.log;
  log.info({ executor: executor.kind, graphs: pipeline.executors }, executor.reason);
  log.info({ model: pipeline.name, family: pipeline.family, manifest: o.manifest, sizes: pipeline.sizes.map((s) => `${s.width}x${s.height}`) }, 'pipeline loaded');
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
  log.info('ready');
}
