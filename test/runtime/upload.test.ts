/**
 * runtime/gpu/model.ts uploadFile on a stand-in driver whose copies run late, as a DMA does: each
 * cuMemcpyHtoDAsync is queued and only carried out when an event after it, or the stream, is waited
 * for (cuEventQuery answers "not ready" every other time it is asked, and otherwise carries out the
 * copies up to its event). weights.bin then arrives whole and unchanged only if no host memory is
 * read into again before its last copy is done. Read by uploadFile itself: both buffers are
 * page-locked and unlocked, and a driver that refuses to page-lock them is said in one line and still
 * gets every byte. Handed over by the part-hashing threads (weights-check.ts HAND_OFF, slots of 1 MiB
 * here): every byte arrives, the manifest's hashes pass, a flipped byte still arrives as read and
 * fails the part check naming its range, and a file that ends early stops the upload short (the
 * part check then says why, naming the part).
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256FileParts } from '../../compiler/hash.ts';
import type { Driver } from '../../runtime/gpu/cuda.ts';
import { uploadFile } from '../../runtime/gpu/model.ts';
import { HAND_OFF, checkWeightParts } from '../../runtime/gpu/weights-check.ts';

const MiB = 1 << 20;
const BASE = 0x7000_0000;

function standIn(lockRc = 0) {
  const device = Buffer.alloc(150 * MiB);
  const queue: { dst: number; src: Uint8Array; n: number; event?: bigint }[] = [];
  const log: string[] = [];
  let events = 0n, queries = 0;
  const drain = (upTo: number) => { for (const c of queue.splice(0, upTo)) device.set(c.src.subarray(0, c.n), c.dst - BASE); };
  const d = {
    rc: (fn: string, ...a: unknown[]) => {
      log.push(fn);
      if (fn === 'cuMemHostRegister') return lockRc;
      if (fn === 'cuStreamSynchronize') drain(queue.length);
      if (fn === 'cuEventQuery') {
        if (++queries % 2) return 600; // CUDA_ERROR_NOT_READY
        drain(queue.findIndex((c) => c.event === a[0]) + 1);
      }
      return 0;
    },
    describe: (rc: number) => `CUDA error ${rc} (stand-in)`,
    out: (fn: string) => { log.push(fn); return ++events; },
    call: (fn: string, ...a: unknown[]) => {
      log.push(fn);
      if (fn === 'cuMemcpyHtoDAsync') queue.push({ dst: a[0] as number, src: a[1] as Uint8Array, n: a[2] as number });
      else if (fn === 'cuEventRecord') queue.at(-1)!.event = a[0] as bigint;
      else if (fn === 'cuEventSynchronize') drain(queue.findIndex((c) => c.event === a[0]) + 1);
    },
  } as unknown as Driver;
  return { d, device, log };
}

describe('uploadFile: weights.bin through two page-locked buffers, copies overlapping the reads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upload-'));
  const bytes = randomFillSync(Buffer.alloc(150 * MiB - 12345)); // 3 chunks of 64 MiB, the last short
  const path = join(dir, 'weights.bin');
  writeFileSync(path, bytes);

  it('every byte arrives though each copy runs only when waited for; a buffer is read into again only after its copy', () => {
    const { d, device, log } = standIn();
    const lines: string[] = [];
    uploadFile(d, path, BASE, bytes.length, 99n, (l) => lines.push(l));
    expect(device.subarray(0, bytes.length).equals(bytes)).toBe(true);
    expect(log).toEqual([
      'cuMemHostRegister', 'cuMemHostRegister', 'cuEventCreate', 'cuEventCreate',
      'cuMemcpyHtoDAsync', 'cuEventRecord', 'cuMemcpyHtoDAsync', 'cuEventRecord',
      'cuEventSynchronize', 'cuMemcpyHtoDAsync', 'cuEventRecord', // chunk 3 reuses buffer 1 after its copy
      'cuStreamSynchronize', 'cuMemHostUnregister', 'cuMemHostUnregister', 'cuEventDestroy', 'cuEventDestroy',
    ]);
    expect(lines.at(-1)).toMatch(/^weights: 0\.16 \/ 0\.16 GB \(100%\)/);
  });

  it('a driver that refuses to page-lock: one line, the same bytes, nothing unlocked', () => {
    const { d, device, log } = standIn(1);
    const lines: string[] = [];
    uploadFile(d, path, BASE, bytes.length, 99n, (l) => lines.push(l));
    expect(device.subarray(0, bytes.length).equals(bytes)).toBe(true);
    expect(lines[0]).toBe('weights: host buffers not page-locked (cuMemHostRegister: CUDA error 1 (stand-in)); the driver stages the copies');
    expect(log.filter((l) => l === 'cuMemHostUnregister')).toHaveLength(0);
  });
});

describe('uploadFile: weights.bin from the part-hashing threads\' slots (read once)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upload-handoff-'));
  const bytes = randomFillSync(Buffer.alloc(40 * MiB - 777)); // 5 parts of 8 MiB, the last short
  const path = join(dir, 'weights.bin');
  writeFileSync(path, bytes);
  const parts = { bytes: 8 * MiB, sha256: sha256FileParts(path, 8 * MiB).parts };
  const handOff = { ...HAND_OFF, chunkBytes: 1 * MiB };

  it('every byte arrives on 1, 2 and 3 threads though copies run late; the slots are page-locked once and the hashes pass', () => {
    for (const threads of [1, 2, 3]) {
      const { d, device, log } = standIn();
      const check = checkWeightParts(path, parts, bytes.length, threads, handOff);
      uploadFile(d, path, BASE, bytes.length, 99n, () => undefined, check.chunks);
      expect(device.subarray(0, bytes.length).equals(bytes)).toBe(true);
      expect(() => check.join()).not.toThrow();
      expect(log.filter((l) => l === 'cuMemHostRegister')).toHaveLength(1);
      expect(log.filter((l) => l === 'cuMemHostUnregister')).toHaveLength(1);
      expect(log.filter((l) => l === 'cuMemcpyHtoDAsync')).toHaveLength(40);
    }
  });

  it('a file smaller than a chunk: slots of its own size in whole pages, every byte', () => {
    const small = join(dir, 'small.bin');
    writeFileSync(small, bytes.subarray(0, 10_000));
    const { d, device } = standIn();
    const check = checkWeightParts(small, { bytes: 8 * MiB, sha256: [sha256FileParts(small, 8 * MiB).parts[0]] }, 10_000, 4, handOff);
    expect(check.chunks!.memory.length).toBe(2 * 12_288); // one thread (one part), two slots of 3 pages
    expect(uploadFile(d, small, BASE, 10_000, 99n, () => undefined, check.chunks)).toBe(10_000);
    expect(device.subarray(0, 10_000).equals(bytes.subarray(0, 10_000))).toBe(true);
    expect(() => check.join()).not.toThrow();
  });

  it('a flipped byte arrives as read and the part check names its part\'s range', () => {
    const flipped = Buffer.from(bytes);
    flipped[20 * MiB + 3] ^= 1;
    const bad = join(dir, 'flipped.bin');
    writeFileSync(bad, flipped);
    const { d, device } = standIn();
    const check = checkWeightParts(bad, parts, bytes.length, 2, handOff);
    uploadFile(d, bad, BASE, bytes.length, 99n, () => undefined, check.chunks);
    expect(device.subarray(0, bytes.length).equals(flipped)).toBe(true);
    expect(() => check.join()).toThrow(/flipped\.bin: expected sha256 [0-9a-f]{16}\.\.\. for bytes \[16777216, 25165824\) \(the manifest's weights\.parts\[2\]\), found [0-9a-f]{16}\.\.\.: the file was modified$/);
  });

  it('a copy that fails stops the reading threads: the error is the copy\'s, and the threads end instead of waiting for their slots', () => {
    const { d } = standIn();
    let copies = 0;
    const call = d.call.bind(d);
    d.call = ((fn: string, ...a: unknown[]) => {
      if (fn === 'cuMemcpyHtoDAsync' && ++copies === 5) throw new Error('CUDA error 700 (stand-in): an illegal memory access');
      return call(fn as never, ...(a as never[]));
    }) as typeof d.call;
    const check = checkWeightParts(path, parts, bytes.length, 3, handOff);
    expect(() => uploadFile(d, path, BASE, bytes.length, 99n, () => undefined, check.chunks)).toThrow(/^CUDA error 700 \(stand-in\)/);
    expect(() => check.join()).toThrow(/weights\.bin: expected a readable file, found stopped by the caller \(reading part \d\)$/);
  });

  it('a file that ends early: the upload stops short with the bytes it copied, and the part check names the part it could not read', () => {
    const short = join(dir, 'short.bin');
    writeFileSync(short, bytes.subarray(0, 30 * MiB));
    const { d, device } = standIn();
    const check = checkWeightParts(short, parts, bytes.length, 2, handOff);
    const copied = uploadFile(d, short, BASE, bytes.length, 99n, () => undefined, check.chunks);
    expect(copied).toBe(30 * MiB);
    expect(device.subarray(0, copied).equals(bytes.subarray(0, copied))).toBe(true);
    expect(() => check.join()).toThrow(/short\.bin: expected a readable file, found the file ends at 31457280 bytes \(reading part 3\)$/);
  });
});
