/**
 * A bounded FIFO that runs one job at a time (the executor is one machine's worth of compute; two
 * generations side by side only slow each other down). `submit` rejects at once when `maxQueued`
 * jobs already wait (the server answers 429); a job whose signal aborts while it waits is removed
 * and never runs; a running job sees the same signal and stops at its next step. `idle()` resolves
 * when nothing runs or waits (SIGTERM drain).
 */

export class QueueFullError extends Error {}

interface Waiting {
  start: () => void;
  signal: AbortSignal;
}

export class JobQueue {
  private running = false;
  private readonly waiting: Waiting[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(readonly maxQueued: number) {}

  get depth(): number { return this.waiting.length; }
  get busy(): boolean { return this.running; }

  submit<T>(job: () => Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.running && this.waiting.length >= this.maxQueued) return Promise.reject(new QueueFullError(`queue full (${this.maxQueued} waiting)`));
    return new Promise<T>((resolve, reject) => {
      const entry: Waiting = {
        signal,
        start: () => {
          signal.removeEventListener('abort', onAbort);
          this.running = true;
          job().then(resolve, reject).finally(() => {
            this.running = false;
            this.next();
          });
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) {
          this.waiting.splice(i, 1);
          reject(signal.reason);
          this.notifyIdle();
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
      if (!this.running) this.next();
    });
  }

  idle(): Promise<void> {
    if (!this.running && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private next(): void {
    const entry = this.waiting.shift();
    if (entry) entry.start();
    else this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.running || this.waiting.length) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}
