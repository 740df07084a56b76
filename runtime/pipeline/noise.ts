/**
 * Seeded Gaussian noise for the initial latents.
 *
 * Algorithm: xoshiro128** (Blackman & Vigna) seeded from the 32-bit seed through splitmix32, two
 * draws -> one 53-bit uniform in (0, 1], Box–Muller in float64 (both the cosine and the sine
 * output are used, in that order), each value rounded to float32.
 *
 * A request's noise is drawn by fillAsync: the same values, the pairs' math (log, sqrt, cos, sin:
 * most of the time) split over a few worker threads that run the same function's source, while
 * this thread only steps the generator's state to where each part starts.
 *
 * Guarantee: the same seed gives the same bytes, on any machine, for a given Node/V8 version
 * (V8's Math.log/cos/sin are its own fdlibm ports, not the C library's). It does NOT reproduce
 * torch's generators (Philox on CUDA, MT19937 on CPU): diffusers' images for "seed 42" cannot be
 * regenerated from the seed; to reproduce one bit-for-bit, import its initial noise tensor.
 */

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

const MAX_SEED = 0xffffffff;

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** xoshiro128** on a state of four uint32 (in place): the next 32-bit unsigned integer. */
function next(s: Uint32Array): number {
  const s1 = s[1];
  const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
  const t = s1 << 9;
  s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}

/** Uniform in (0, 1] with 53 random bits. */
function uniform(s: Uint32Array): number {
  const hi = next(s) >>> 5; // 27 bits
  const lo = next(s) >>> 6; // 26 bits
  return (hi * 67108864 + lo + 1) / 9007199254740992;
}

/**
 * A stream of standard normal float32 values from a seed in [0, 2^32). The state lives in a
 * Uint32Array and `fill` runs the pairs in one loop (Flux.2's 524288 values: 13 ms where a call per
 * value took 33-41 ms on this machine's AMD EPYC; the same values: test/pipeline/noise.test.ts
 * compares it with the per-value reference and with hashes of the draws from before).
 */
export class GaussianNoise {
  private readonly s = new Uint32Array(4);
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`seed must be an integer in [0, ${MAX_SEED}], got ${seed}`);
    const sm = splitmix32(seed);
    for (let i = 0; i < 4; i++) this.s[i] = sm();
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** xoshiro128**: the next 32-bit unsigned integer. */
  nextUint32(): number {
    return next(this.s);
  }

  /** Uniform in (0, 1] with 53 random bits. */
  nextUniform(): number {
    return uniform(this.s);
  }

  nextNormal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const r = Math.sqrt(-2 * Math.log(uniform(this.s)));
    const theta = 2 * Math.PI * uniform(this.s);
    this.spare = Math.fround(r * Math.sin(theta));
    this.hasSpare = true;
    return Math.fround(r * Math.cos(theta));
  }

  /** n standard normal values (float32): the next n of nextNormal. */
  fill(n: number): Float32Array {
    const out = new Float32Array(n);
    let i = 0;
    if (n > 0 && this.hasSpare) out[i++] = this.nextNormal();
    const end = i + ((n - i) & ~1);
    fillPairs(this.s, out, i, end);
    if (end < n) out[end] = this.nextNormal();
    return out;
  }

  /**
   * fill(n), the same values, with the pairs' math split over the noise workers: this thread only
   * steps the state past each part (skipPairs, no math) and hands each worker its part's start
   * state; the workers write into one shared buffer. Falls back to fill where no pool is ready yet
   * (its workers start on the first call), n is small, or a worker fails (never a failed request).
   */
  async fillAsync(n: number, pool: NoisePool | undefined = sharedNoisePool()): Promise<Float32Array> {
    if (!pool?.ready || n < PARALLEL_MIN || this.hasSpare) return this.fill(n);
    const start = Uint32Array.from(this.s);
    const out = new Float32Array(new SharedArrayBuffer(4 * n));
    const pairs = n >> 1, parts = pool.size, jobs: Promise<void>[] = [];
    for (let k = 0, from = 0; k < parts; k++) {
      const to = 2 * Math.round(((k + 1) * pairs) / parts);
      jobs.push(pool.run(Uint32Array.from(this.s), out, from, to));
      skipPairs(this.s, (to - from) >> 1);
      from = to;
    }
    try {
      await Promise.all(jobs);
    } catch {
      // A worker died (the pool retires it): the same values from this thread, from the same start.
      this.s.set(start);
      return this.fill(n);
    }
    if (n & 1) out[n - 1] = this.nextNormal();
    return out;
  }
}

/** Below this many values one thread is quicker than a round trip to the workers. */
const PARALLEL_MIN = 65536;

/**
 * out[from, to) (an even count) as Box–Muller pairs from the state st (four uint32, advanced in
 * place): xoshiro128** inlined four times per pair with the state in locals (25% faster than a call
 * per draw). Self-contained — no names from outside, no nested functions — because the noise
 * workers run its source text (sharedNoisePool), so both threads compute with the same code.
 */
function fillPairs(st: Uint32Array, out: Float32Array, from: number, to: number): void {
  let s0 = st[0] | 0, s1 = st[1] | 0, s2 = st[2] | 0, s3 = st[3] | 0, r = 0, t = 0, m = 0;
  for (let i = from; i < to; i += 2) {
    m = Math.imul(s1, 5); r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0; t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    const hi1 = r >>> 5;
    m = Math.imul(s1, 5); r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0; t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    const u1 = (hi1 * 67108864 + (r >>> 6) + 1) / 9007199254740992;
    m = Math.imul(s1, 5); r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0; t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    const hi2 = r >>> 5;
    m = Math.imul(s1, 5); r = Math.imul((m << 7) | (m >>> 25), 9) >>> 0; t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    const u2 = (hi2 * 67108864 + (r >>> 6) + 1) / 9007199254740992;
    const radius = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    out[i] = radius * Math.cos(theta);
    out[i + 1] = radius * Math.sin(theta);
  }
  st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3;
}

/**
 * Steps st past `pairs` pairs (four draws each) without their math: where the next worker's part
 * starts. xoshiro128**'s state update as `next` makes it, inlined with the state in locals (this
 * thread's share of fillAsync's work: Flux.2's 196608 skipped pairs 0.64 ms, against 2.4 ms with a
 * call per draw, on the 2-core CPU machine).
 */
function skipPairs(st: Uint32Array, pairs: number): void {
  let s0 = st[0] | 0, s1 = st[1] | 0, s2 = st[2] | 0, s3 = st[3] | 0, t = 0;
  for (let i = 0; i < 4 * pairs; i++) {
    t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
  }
  st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3;
}

/**
 * Worker threads that run fillPairs on parts of a shared buffer. The workers are unreferenced
 * while idle (they never keep a process alive) and referenced while any part of theirs is in flight. `ready`
 * turns true once every worker has started; until then fillAsync draws on its own thread.
 */
export class NoisePool {
  ready = false;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void; worker: Worker }>();
  private nextId = 0;
  private turn = 0;
  /** Parts in flight per worker: referenced from the first to the last (overlapping fills share workers). */
  private readonly inFlight = new Map<Worker, number>();

  constructor(readonly size: number) {
    // The worker's source: fillPairs' own text (a bundler's or tsx's name helper stubbed, should it appear).
    const source = `const { parentPort } = require('node:worker_threads'); const __name = (f) => f;
const fillPairs = ${fillPairs.toString()};
parentPort.postMessage({ ready: true });
parentPort.on('message', ({ id, state, out, from, to }) => { fillPairs(state, out, from, to); parentPort.postMessage({ id }); });`;
    let started = 0;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(source, { eval: true });
      worker.on('message', (m: { ready?: boolean; id?: number }) => {
        if (m.ready) {
          this.ready = ++started === size;
          return;
        }
        const job = this.pending.get(m.id!);
        if (!job) return;
        this.pending.delete(m.id!);
        this.release(job.worker);
        job.resolve();
      });
      worker.on('error', (e: Error) => this.fail(worker, e));
      worker.on('exit', (code) => this.fail(worker, new Error(`noise worker exited (code ${code})`)));
      worker.unref(); // after the listeners: attaching a 'message' listener references the worker's port again
      this.workers.push(worker);
    }
  }

  /** fillPairs(state, out, from, to) on the next worker; out must be on a SharedArrayBuffer. */
  run(state: Uint32Array, out: Float32Array, from: number, to: number): Promise<void> {
    const worker = this.workers[this.turn++ % this.workers.length];
    if (!worker) return Promise.reject(new Error('noise pool: no worker left'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, worker });
      const n = this.inFlight.get(worker) ?? 0;
      if (n === 0) worker.ref();
      this.inFlight.set(worker, n + 1);
      worker.postMessage({ id, state, out, from, to });
    });
  }

  /** Stops the workers (tests; the shared pool lives as long as the process). */
  async close(): Promise<void> {
    this.ready = false;
    await Promise.all(this.workers.splice(0).map((w) => w.terminate()));
  }

  private release(worker: Worker): void {
    const n = (this.inFlight.get(worker) ?? 1) - 1;
    this.inFlight.set(worker, n);
    if (n === 0) worker.unref();
  }

  /** A worker that died fails its parts and leaves the pool; the pool is no longer used. */
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

let shared: NoisePool | undefined | null;

/**
 * The process's noise pool: min(4, cores - 1) workers (none on a machine of two cores or fewer,
 * where a part per core would compete with the thread driving the GPU), started on the first call.
 */
export function sharedNoisePool(): NoisePool | undefined {
  if (shared === undefined) {
    const size = Math.min(4, availableParallelism() - 1);
    shared = size >= 2 ? new NoisePool(size) : null;
  }
  return shared ?? undefined;
}

export const SEED_LIMIT = MAX_SEED;

/** Per-image seed rule: image k of a request with seed s uses (s + k) mod 2^32. */
export function imageSeed(seed: number, k: number): number {
  return (seed + k) % (MAX_SEED + 1);
}

/** A fresh random seed (for requests that give none); not reproducible by design. */
export function randomSeed(): number {
  return Math.floor(Math.random() * (MAX_SEED + 1));
}
