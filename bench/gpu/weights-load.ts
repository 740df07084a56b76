/**
 * What loading weights.bin costs, three ways (GPU host): writes a file of --gib GiB (random 64 MiB
 * blocks, so it sits in the page cache as a just-compiled or recently read artifact does), then,
 * alternating, --rounds times:
 *   before:   sha256 of the whole file on this thread (artifact.ts before part hashes), then the upload
 *             as it was (64 MiB read into one pageable buffer, then a synchronous cuMemcpyHtoD);
 *   separate: the part hashes checked on worker threads (checkWeightParts) while uploadFile reads the
 *             file again itself through two page-locked buffers (session 37); and each of the two alone;
 *   handed:   the part-hashing threads' reads handed to uploadFile (weights-check.ts HAND_OFF: the file
 *             read once), on each thread count of --threads.
 * Prints seconds and GB/s for each, and checks four 64 MiB ranges of the last device copy (a handed
 * one) against the file. --cold drops the file from the page cache before each load (python3's
 * posix_fadvise, after an fsync), as on a machine's first load after boot, and times separate and
 * handed against one thread reading the file alone (the disk's one-stream rate, in the same run).
 *
 *   node bench/gpu/weights-load.mjs [--gib 8] [--rounds 2] [--threads 8] [--cold] [--dir /tmp]   (bundled by esbuild; no Node on the host)
 */
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { partThreads, sha256File, sha256FileParts } from '../../compiler/hash.ts';
import { WEIGHT_PART_BYTES } from '../../compiler/weights-file.ts';
import { alloc, createStream, openDevice } from '../../runtime/gpu/cuda.ts';
import { uploadFile } from '../../runtime/gpu/model.ts';
import { HAND_OFF, checkWeightParts } from '../../runtime/gpu/weights-check.ts';

const { values: v } = parseArgs({ options: { gib: { type: 'string', default: '8' }, rounds: { type: 'string', default: '2' }, threads: { type: 'string', default: '8' }, cold: { type: 'boolean', default: false }, dir: { type: 'string', default: '/tmp' } } });
const bytes = Number(v.gib) * 2 ** 30, CHUNK = 64 << 20;
const path = join(v.dir!, 'weights-load.bin');
const seconds = (f: () => void) => { const t = performance.now(); f(); return (performance.now() - t) / 1000; };
const rate = (s: number) => `${s.toFixed(2)} s (${(bytes / 1e9 / s).toFixed(2)} GB/s)`;

const block = Buffer.allocUnsafe(CHUNK);
const written = seconds(() => {
  const fd = openSync(path, 'w');
  for (let pos = 0; pos < bytes; pos += CHUNK) writeSync(fd, randomFillSync(block), 0, CHUNK, pos);
  closeSync(fd);
});
console.log(`file: ${(bytes / 2 ** 30).toFixed(0)} GiB written in ${written.toFixed(1)} s; ${availableParallelism()} cores, ${partThreads(bytes / WEIGHT_PART_BYTES)} check threads`);
let parts: string[] = [];
console.log(`compile side, sha256 and part hashes in one read (one thread): ${rate(seconds(() => { parts = sha256FileParts(path, WEIGHT_PART_BYTES).parts; }))}`);

const device = openDevice(0), d = device.driver, stream = createStream(d);
const base = alloc(d, bytes, 'weights');
const quiet = () => undefined;
console.log(`device: ${device.name}`);

/** The upload before this change: one pageable buffer, read then copied synchronously. */
function uploadBefore(): void {
  const fd = openSync(path, 'r');
  const chunk = Buffer.allocUnsafe(CHUNK);
  for (let pos = 0; pos < bytes;) {
    const n = readSync(fd, chunk, 0, Math.min(CHUNK, bytes - pos), pos);
    d.call('cuMemcpyHtoD', base + pos, chunk.subarray(0, n), n);
    pos += n;
  }
  closeSync(fd);
}

const EVICT = 'import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)';
/** A load's seconds; with --cold the file leaves the page cache first. */
const load = (f: () => void) => {
  if (v.cold) execFileSync('python3', ['-c', EVICT, path]);
  return seconds(f);
};
/** The file read once by one thread, 64 MiB at a time, nothing else done. */
function readAlone(): void {
  const fd = openSync(path, 'r');
  for (let pos = 0; pos < bytes;) pos += readSync(fd, block, 0, Math.min(CHUNK, bytes - pos), pos);
  closeSync(fd);
}

for (let round = 1; round <= Number(v.rounds); round++) {
  if (v.cold) console.log(`round ${round} cold, one thread reading alone: ${rate(load(readAlone))}`);
  else {
    const hash = seconds(() => sha256File(path)), upload = seconds(uploadBefore);
    console.log(`round ${round} before: sha256 ${rate(hash)}, then upload ${rate(upload)}; load ${rate(hash + upload)}`);
  }
  const both = load(() => { const check = checkWeightParts(path, { bytes: WEIGHT_PART_BYTES, sha256: parts }, bytes); uploadFile(d, path, base, bytes, stream, quiet); check.join(); });
  if (v.cold) console.log(`round ${round} cold, separate: parts checked while uploading ${rate(both)}`);
  else {
    const alone = seconds(() => uploadFile(d, path, base, bytes, stream, quiet));
    const check = seconds(() => checkWeightParts(path, { bytes: WEIGHT_PART_BYTES, sha256: parts }, bytes).join());
    console.log(`round ${round} separate: parts checked while uploading ${rate(both)}; the upload alone ${rate(alone)}, the parts check alone ${rate(check)}`);
  }
  for (const threads of v.threads!.split(',').map(Number)) {
    const handed = load(() => {
      const c = checkWeightParts(path, { bytes: WEIGHT_PART_BYTES, sha256: parts }, bytes, threads, HAND_OFF);
      uploadFile(d, path, base, bytes, stream, quiet, c.chunks);
      c.join();
    });
    console.log(`round ${round}${v.cold ? ' cold,' : ''} handed, ${threads} threads: ${rate(handed)}`);
  }
}

// The device copy against the file, four 64 MiB ranges.
const fd = openSync(path, 'r');
const want = Buffer.allocUnsafe(CHUNK), got = Buffer.allocUnsafe(CHUNK);
let same = 0;
for (const at of [0, Math.floor(bytes / 3 / CHUNK) * CHUNK, Math.floor((2 * bytes) / 3 / CHUNK) * CHUNK, bytes - CHUNK]) {
  readSync(fd, want, 0, CHUNK, at);
  d.call('cuMemcpyDtoH', got, base + at, CHUNK);
  if (want.equals(got)) same++;
}
closeSync(fd);
console.log(`device copy: ${same} of 4 ranges equal to the file`);
rmSync(path);
process.exit(0);
