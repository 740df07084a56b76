/**
 * sha256, the one way the project hashes: of bytes or text (artifact hashes, the kernel cache key),
 * of a file read in 8 MiB chunks (weights.bin, copied graphs: never whole in memory), of a file's
 * fixed-size parts on worker threads (weights.bin's part hashes), and the
 * 16-hex-digit name of a JSON value (kernel names: identical descriptors render once).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { fail } from './errors.ts';

export const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The worker's whole program (evaluated: no file to find beside a bundle): hashes its parts, posts them, counts itself done. */
const PART_WORKER = `
const { createHash } = require('node:crypto');
const { closeSync, openSync, readSync } = require('node:fs');
const { workerData: w } = require('node:worker_threads');
const done = new Int32Array(w.done);
const out = [];
let fd = -1, i = w.first;
try {
  fd = openSync(w.path, 'r');
  const chunk = Buffer.allocUnsafe(8 << 20);
  for (; i < w.count; i += w.step) {
    const hash = createHash('sha256');
    for (let pos = i * w.partBytes, end = Math.min(w.bytes, pos + w.partBytes); pos < end;) {
      const n = readSync(fd, chunk, 0, Math.min(chunk.length, end - pos), pos);
      if (n === 0) throw new Error('the file ends at ' + pos + ' bytes');
      hash.update(chunk.subarray(0, n));
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
}
`;

/** Threads for part hashes: the cores but one (the caller's own work), at most 8, at least 1, no more than parts. */
export const partThreads = (parts: number): number => Math.max(1, Math.min(8, availableParallelism() - 1, parts));

/**
 * The sha256 of each `partBytes` range of the first `bytes` of a file (the last may be shorter),
 * hashed on worker threads that each read their own parts (every `threads`-th one): starts them and
 * returns at once; join() waits (synchronously) and gives the hashes in order, or throws naming the
 * file and the earliest part that could not be read. One sha256 stream ran at 1.04 GB/s on an H200
 * host's core and at 1.9 GB/s on this CPU machine's (bench/RESULTS.md "Session 37", call H6 and the
 * lines after it); parts hash on as many cores as there are (weights.bin's, compiler/weights-file.ts and
 * runtime/gpu/weights-check.ts).
 */
export function sha256Parts(path: string, partBytes: number, bytes: number, threads = partThreads(Math.ceil(bytes / partBytes))): { join(): string[] } {
  if (!(Number.isSafeInteger(partBytes) && partBytes > 0 && partBytes % (8 << 20) === 0)) throw new Error(`sha256Parts: parts of a multiple of 8 MiB, found ${partBytes}`);
  const count = Math.ceil(bytes / partBytes);
  const done = new SharedArrayBuffer(4);
  const step = Math.min(threads, Math.max(count, 1));
  // One channel a worker (a port is transferred to one thread); the results are read from the other ends synchronously.
  const ports = Array.from({ length: step }, (_, first) => {
    const { port1, port2 } = new MessageChannel();
    // Unreferenced: a caller that fails before join() exits without waiting for the hashes.
    new Worker(PART_WORKER, { eval: true, workerData: { path, bytes, partBytes, count, first, step, done, port: port2 }, transferList: [port2] }).unref();
    return port1;
  });
  return {
    join() {
      const flag = new Int32Array(done);
      while (Atomics.load(flag, 0) < step) Atomics.wait(flag, 0, Atomics.load(flag, 0), 1000);
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
