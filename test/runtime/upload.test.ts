/**
 * runtime/gpu/model.ts uploadFile on a stand-in driver whose copies run late, as a DMA does: each
 * cuMemcpyHtoDAsync is queued and only carried out when an event after it, or the stream, is waited
 * for. weights.bin then arrives whole and unchanged only if no host buffer is read into again before
 * its last copy is done; both buffers are page-locked and unlocked, and a driver that refuses to
 * page-lock them is said in one line and still gets every byte.
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Driver } from '../../runtime/gpu/cuda.ts';
import { uploadFile } from '../../runtime/gpu/model.ts';

const MiB = 1 << 20;
const BASE = 0x7000_0000;

function standIn(lockRc = 0) {
  const device = Buffer.alloc(150 * MiB);
  const queue: { dst: number; src: Buffer; n: number; event?: bigint }[] = [];
  const log: string[] = [];
  let events = 0n;
  const drain = (upTo: number) => { for (const c of queue.splice(0, upTo)) c.src.copy(device, c.dst - BASE, 0, c.n); };
  const d = {
    rc: (fn: string, ...a: unknown[]) => {
      log.push(fn);
      if (fn === 'cuMemHostRegister') return lockRc;
      if (fn === 'cuStreamSynchronize') drain(queue.length);
      return 0;
    },
    describe: (rc: number) => `CUDA error ${rc} (stand-in)`,
    out: (fn: string) => { log.push(fn); return ++events; },
    call: (fn: string, ...a: unknown[]) => {
      log.push(fn);
      if (fn === 'cuMemcpyHtoDAsync') queue.push({ dst: a[0] as number, src: a[1] as Buffer, n: a[2] as number });
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
