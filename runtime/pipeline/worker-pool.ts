/**
 * WorkerPool: worker threads that each run one program (source text, evaluated: no file to find
 * beside a bundle) defining `handle(message)`, whose return value is posted back as the reply. A
 * call goes to the next worker in turn. The workers are unreferenced while idle (they never keep a
 * process alive) and referenced while a call of theirs is in flight. `ready` turns true once every
 * worker has started. A worker that dies fails its calls and leaves the pool, which then reports
 * not ready (callers fall back to their own thread). The request noise (noise.ts) and the PNG
 * encoder's parts (png.ts) run on such pools.
 */
import { Worker } from 'node:worker_threads';

export class WorkerPool {
  ready = false;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (reply: unknown) => void; reject: (e: Error) => void; worker: Worker }>();
  private nextId = 0;
  private turn = 0;
  /** Calls in flight per worker: referenced from the first to the last. */
  private readonly inFlight = new Map<Worker, number>();

  /** `program` defines `function handle(message)` (plain JavaScript, CommonJS: `require` is there); `name` names the workers in errors. */
  constructor(readonly size: number, program: string, readonly name: string) {
    // A bundler's or tsx's name helper stubbed, should a function's source text carry it.
    const source = `const { parentPort } = require('node:worker_threads'); const __name = (f) => f;
${program}
parentPort.postMessage({ ready: true });
parentPort.on('message', ({ id, message }) => parentPort.postMessage({ id, reply: handle(message) }));`;
    let started = 0;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(source, { eval: true });
      worker.on('message', (m: { ready?: boolean; id?: number; reply?: unknown }) => {
        if (m.ready) {
          this.ready = ++started === size;
          return;
        }
        const job = this.pending.get(m.id!);
        if (!job) return;
        this.pending.delete(m.id!);
        this.release(job.worker);
        job.resolve(m.reply);
      });
      worker.on('error', (e: Error) => this.fail(worker, e));
      worker.on('exit', (code) => this.fail(worker, new Error(`${name} worker exited (code ${code})`)));
      worker.unref(); // after the listeners: attaching a 'message' listener references the worker's port again
      this.workers.push(worker);
    }
  }

  /** handle(message) on the next worker; its return value. */
  call<R>(message: unknown): Promise<R> {
    const worker = this.workers[this.turn++ % this.workers.length];
    if (!worker) return Promise.reject(new Error(`${this.name} pool: no worker left`));
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (reply: unknown) => void, reject, worker });
      const n = this.inFlight.get(worker) ?? 0;
      if (n === 0) worker.ref();
      this.inFlight.set(worker, n + 1);
      worker.postMessage({ id, message });
    });
  }

  /** Stops the workers (tests; shared pools live as long as the process). */
  async close(): Promise<void> {
    this.ready = false;
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
  }

  private release(worker: Worker): void {
    const n = (this.inFlight.get(worker) ?? 1) - 1;
    this.inFlight.set(worker, n);
    if (n === 0) worker.unref();
  }

  /** A worker that died fails its calls and leaves the pool; the pool is no longer used. */
  private fail(worker: Worker, e: Error): void {
    this.ready = false;
    for (const [id, job] of this.pending) {
      if (job.worker !== worker) continue;
      this.pending.delete(id);
      this.release(worker);
      job.reject(e);
    }
    const i = this.workers.indexOf(worker);
    if (i >= 0) this.workers.splice(i, 1);
  }
}
