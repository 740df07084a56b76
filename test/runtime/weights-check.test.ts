/**
 * runtime/gpu/weights-check.ts on the CPU: weights.bin's parts hashed on worker threads (compiler/hash.ts
 * sha256Parts; sha256FileParts, the compiler's call, against each part's own sha256), a flipped
 * byte named by its part's byte range on one thread or several, a file shorter than the manifest
 * says, and part lists of the wrong length.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256FileParts } from '../../compiler/hash.ts';
import { checkWeightParts } from '../../runtime/gpu/weights-check.ts';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'weights-check-'));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A 20 MiB + 5 file of random bytes: parts of 8 MiB, 8 MiB and 4 MiB + 5. */
function file(name: string): { path: string; bytes: Buffer } {
  const bytes = randomFillSync(Buffer.alloc(20 * MiB + 5));
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

describe('weights.bin part hashes', () => {
  it('the compiler\'s one read gives the file\'s sha256 and each part\'s; parts must be whole 8 MiB pieces', () => {
    const { path, bytes } = file('a.bin');
    const { sha256, parts } = sha256FileParts(path, 8 * MiB);
    expect(sha256).toBe(sha(bytes));
    expect(parts).toEqual([sha(bytes.subarray(0, 8 * MiB)), sha(bytes.subarray(8 * MiB, 16 * MiB)), sha(bytes.subarray(16 * MiB))]);
    const exact = join(dir, 'exact.bin');
    writeFileSync(exact, bytes.subarray(0, 16 * MiB));
    expect(sha256FileParts(exact, 8 * MiB).parts).toHaveLength(2); // no empty last part
    expect(() => sha256FileParts(path, 1000)).toThrow(/sha256Parts: parts of a multiple of 8 MiB, found 1000/);
  });

  it('checked on worker threads: the manifest\'s hashes pass on 1, 2 and 3 threads; a flipped byte is named by its part\'s range', () => {
    const { path, bytes } = file('b.bin');
    const parts = { bytes: 8 * MiB, sha256: sha256FileParts(path, 8 * MiB).parts };
    for (const threads of [1, 2, 3]) expect(() => checkWeightParts(path, parts, bytes.length, threads).join()).not.toThrow();
    const flipped = Buffer.from(bytes);
    flipped[12 * MiB] ^= 1;
    writeFileSync(path, flipped);
    for (const threads of [1, 3]) {
      expect(() => checkWeightParts(path, parts, bytes.length, threads).join()).toThrow(new RegExp(
        `b\\.bin: expected sha256 ${parts.sha256[1].slice(0, 16)}\\.\\.\\. for bytes \\[${8 * MiB}, ${16 * MiB}\\) \\(the manifest's weights\\.parts\\[1\\]\\), found ${sha(flipped.subarray(8 * MiB, 16 * MiB)).slice(0, 16)}\\.\\.\\.: the file was modified`));
    }
  });

  it('a file shorter than the manifest says, and part lists that do not cover the file, are refused', () => {
    const { path, bytes } = file('c.bin');
    const parts = { bytes: 8 * MiB, sha256: sha256FileParts(path, 8 * MiB).parts };
    truncateSync(path, 10 * MiB);
    expect(() => checkWeightParts(path, parts, bytes.length, 2).join()).toThrow(/c\.bin: expected a readable file, found the file ends at 10485760 bytes \(reading part 1\)$/);
    expect(() => checkWeightParts(path, { bytes: 8 * MiB, sha256: parts.sha256.slice(1) }, bytes.length)).toThrow(/expected 3 part hashes for 20971525 bytes in parts of 8388608 \(the manifest's weights\.parts\), found 2/);
    expect(readFileSync(path).length).toBe(10 * MiB);
  });
});
