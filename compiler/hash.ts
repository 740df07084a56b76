/**
 * sha256, the one way the project hashes: of bytes or text (artifact hashes, the kernel cache key),
 * of a file read in 8 MiB chunks (weights.bin, copied graphs: never whole in memory), of a file's
 * fixed-size parts on worker threads (weights.bin's part hashes; those threads' reads can be handed to the
 * caller, so that the runtime reads weights.bin once to check and upload it), and the
 * 16-hex-digit name of a JSON value (kernel names: identical descriptors render once).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { fail } from './errors.ts';

export const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * The worker's whole program (evaluated: no file to find beside a bundle): hashes its parts, posts them, counts itself done.
 * With a hand-off (sha256Parts' `handOff`) it reads each chunk into one of its own slots of the caller's shared memory,
 * publishes it (state 1, its file offset and length), then hashes it while the caller copies it; it reads into a slot
 * again only once the caller has set it free (state 0). An abort flag set by the caller ends it at its next wait.
 */
const PART_WORKER = `
const { createHash } = require('node:crypto');
const { closeSync, openSync, readSync } = require('node:fs');
const { workerData: w } = require('node:worker_threads');
const done = new Int32Array(w.done);
const h = w.handOff;
const state = h ? new Int32Array(h.ctl) : null, meta = h ? new Float64Array(h.meta) : null;
const ABORT = h ? state.length - 2 : 0, PUBLISHED = ABORT + 1;
const slots = h ? Array.from({ length: h.perWorker }, (_, j) => w.first * h.perWorker + j) : [];
const views = slots.map((k) => new Uint8Array(h.data, h.offset + k * h.chunkBytes, h.chunkBytes));
const out = [];
let fd = -1, i = w.first, turn = 0;
try {
  fd = openSync(w.path, 'r');
  const chunk = h ? null : Buffer.allocUnsafe(8 << 20);
  for (; i < w.count; i += w.step) {
    const hash = createHash('sha256');
    for (let pos = i * w.partBytes, end = Math.min(w.bytes, pos + w.partBytes); pos < end;) {
      let buf = chunk, k = -1;
      if (h) {
        const j = turn++ % slots.length;
        k = slots[j];
        buf = views[j];
        while (Atomics.load(state, k) !== 0) {
          if (Atomics.load(state, ABORT)) throw new Error('stopped by the caller');
          Atomics.wait(state, k, Atomics.load(state, k), 100);
        }
      }
      const n = readSync(fd, buf, 0, Math.min(buf.length, end - pos), pos);
      if (n === 0) throw new Error('the file ends at ' + pos + ' bytes');
      if (h) {
        meta[2 * k] = pos;
        meta[2 * k + 1] = n;
        Atomics.store(state, k, 1);
        Atomics.add(state, PUBLISHED, 1);
        Atomics.notify(state, PUBLISHED);
      }
      hash.update(buf.subarray(0, n));
      pos += n;
    }
    out.push([i, hash.digest('hex')]);
  }
  w.port.postMessage({ parts: out });
} catch (e) {
  w.port.postMessage({ error: String(e && e.message || e), part: i });
} finally {
  if (fd >= 0) closeSync(fd);
  Atomics.add(done, 0, 1);
  Atomics.notify(done, 0);
  if (h) Atomics.notify(state, PUBLISHED);
}
`;

/**
 * Threads for part hashes: the cores but one (the caller's own work), at most 12, at least 1, no more than parts. On an
 * H200 host's 16 cores, weights.bin's load read once on 12 threads ran at 7.5-7.7 GB/s, on 8 at 5.5-5.9, on 15 at
 * 7.3-7.7 (bench/RESULTS.md "Session 38", call X2).
 */
export const partThreads = (parts: number): number => Math.max(1, Math.min(12, availableParallelism() - 1, parts));

/**
 * sha256Parts' hand-off: `perWorker` slots a thread of `chunkBytes` (or, for a smaller file, the file's size in whole
 * pages), in shared memory from `memory(bytes)` (the caller's: page-alignable, to page-lock).
 */
export interface HandOff { chunkBytes: number; perWorker: number; memory(bytes: number): { data: SharedArrayBuffer; offset: number } }

/** Chunks read by sha256Parts' workers, handed to the caller (one thread: the caller's). */
export interface HandedChunks {
  /** Slot k's memory; `memory` all slots at once (to page-lock). */
  readonly slots: Uint8Array[];
  readonly memory: Uint8Array;
  /** The slots filled since the last call, each now the caller's until release(). */
  take(): { slot: number; pos: number; n: number }[];
  /** Slot k may be read into again. */
  release(slot: number): void;
  /** Waits up to `ms` for a slot to fill or the workers to end. */
  wait(ms: number): void;
  /** Every worker has ended (all its parts read, or failed: join() says why). */
  ended(): boolean;
  /** Stops the workers at their next wait (the caller failed). */
  abort(): void;
}

/**
 * The sha256 of each `partBytes` range of the first `bytes` of a file (the last may be shorter),
 * hashed on worker threads that each read their own parts (every `threads`-th one): starts them and
 * returns at once; join() waits (synchronously) and gives the hashes in order, or throws naming the
 * file and the earliest part that could not be read. One sha256 stream ran at 1.04 GB/s on an H200
 * host's core and at 1.9 GB/s on this CPU machine's (bench/RESULTS.md "Session 37", call H6 and the
 * lines after it); parts hash on as many cores as there are (weights.bin's, compiler/weights-file.ts and
 * runtime/gpu/weights-check.ts).
 *
 * With `handOff` the bytes the workers read are the caller's too (`chunks`): each worker reads into
 * its own slots of the hand-off's memory, so a file is read once to be both hashed and used
 * (runtime/gpu/model.ts uploadFile: weights.bin to the device).
 */
export function sha256Parts(
  path: string, partBytes: number, bytes: number, threads = partThreads(Math.ceil(bytes / partBytes)), handOff?: HandOff,
): { join(): string[]; chunks?: HandedChunks; threads: number } {
  if (!(Number.isSafeInteger(partBytes) && partBytes > 0 && partBytes % (8 << 20) === 0)) throw new Error(`sha256Parts: parts of a multiple of 8 MiB, found ${partBytes}`);
  const count = Math.ceil(bytes / partBytes);
  const done = new SharedArrayBuffer(4);
  const step = Math.min(threads, Math.max(count, 1));
  const slotCount = handOff ? step * handOff.perWorker : 0;
  const chunkBytes = handOff ? Math.min(handOff.chunkBytes, Math.max(4096, Math.ceil(bytes / 4096) * 4096)) : 0;
  const shared = handOff
    ? { ...handOff.memory(slotCount * chunkBytes), chunkBytes, perWorker: handOff.perWorker, ctl: new SharedArrayBuffer(4 * (slotCount + 2)), meta: new SharedArrayBuffer(16 * slotCount) }
    : undefined;
  // One channel a worker (a port is transferred to one thread); the results are read from the other ends synchronously.
  const ports = Array.from({ length: step }, (_, first) => {
    const { port1, port2 } = new MessageChannel();
    // Unreferenced: a caller that fails before join() exits without waiting for the hashes.
    new Worker(PART_WORKER, { eval: true, workerData: { path, bytes, partBytes, count, first, step, done, port: port2, handOff: shared }, transferList: [port2] }).unref();
    return port1;
  });
  const ended = new Int32Array(done);
  return {
    threads: step,
    join() {
      while (Atomics.load(ended, 0) < step) Atomics.wait(ended, 0, Atomics.load(ended, 0), 1000);
      const got: string[] = new Array<string>(count);
      const errors: { error: string; part: number }[] = [];
      for (const port of ports) {
        for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
          const msg = m.message as { parts?: [number, string][]; error?: string; part?: number };
          if (msg.error) errors.push({ error: msg.error, part: msg.part ?? 0 });
          for (const [i, h] of msg.parts ?? []) got[i] = h;
        }
        port.close();
      }
      const first = errors.sort((a, b) => a.part - b.part)[0]; // the earliest part's, whichever thread read it
      if (first) fail(path, 'a readable file', `${first.error} (reading part ${first.part})`);
      return got;
    },
    ...(shared ? { chunks: handedChunks(shared, slotCount, ended, step) } : {}),
  };
}

/** The caller's side of a hand-off: slot states 0 free, 1 filled (the worker's to publish), 2 taken (the caller's). */
function handedChunks(h: { data: SharedArrayBuffer; offset: number; chunkBytes: number; ctl: SharedArrayBuffer; meta: SharedArrayBuffer }, slotCount: number, ended: Int32Array, workers: number): HandedChunks {
  const state = new Int32Array(h.ctl), meta = new Float64Array(h.meta);
  const ABORT = slotCount, PUBLISHED = slotCount + 1;
  let seen = 0;
  return {
    slots: Array.from({ length: slotCount }, (_, k) => new Uint8Array(h.data, h.offset + k * h.chunkBytes, h.chunkBytes)),
    memory: new Uint8Array(h.data, h.offset, slotCount * h.chunkBytes),
    take() {
      seen = Atomics.load(state, PUBLISHED);
      const got = [];
      for (let k = 0; k < slotCount; k++) {
        if (Atomics.compareExchange(state, k, 1, 2) === 1) got.push({ slot: k, pos: meta[2 * k], n: meta[2 * k + 1] });
      }
      return got;
    },
    release(k) {
      Atomics.store(state, k, 0);
      Atomics.notify(state, k);
    },
    wait(ms) {
      if (Atomics.load(ended, 0) < workers) Atomics.wait(state, PUBLISHED, seen, ms);
    },
    ended: () => Atomics.load(ended, 0) >= workers,
    abort() {
      Atomics.store(state, ABORT, 1);
      for (let k = 0; k < slotCount; k++) Atomics.notify(state, k);
    },
  };
}

/** A file's sha256 (this thread) and its parts' (sha256Parts, on worker threads meanwhile): one read's time, not two. A file of one part is its own part. */
export function sha256FileParts(path: string, partBytes: number): { sha256: string; parts: string[] } {
  const size = statSync(path).size;
  if (size <= partBytes) {
    const sha256 = sha256File(path);
    return { sha256, parts: size ? [sha256] : [] };
  }
  const parts = sha256Parts(path, partBytes, size);
  const sha256 = sha256File(path);
  return { sha256, parts: parts.join() };
}

/** The first 16 hex digits of the sha256 of JSON.stringify(x). */
export const jsonHash16 = (x: unknown): string => sha256(JSON.stringify(x)).slice(0, 16);

export function sha256File(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(8 << 20);
    for (let pos = 0; ;) {
      const n = readSync(fd, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
