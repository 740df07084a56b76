/**
 * sha256, the one way the project hashes: of bytes or text (artifact hashes, the kernel cache key),
 * of a file read in 8 MiB chunks (weights.bin, copied graphs: never whole in memory), and the
 * 16-hex-digit name of a JSON value (kernel names: identical descriptors render once).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

export const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

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
