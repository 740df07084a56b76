/**
 * weights.bin checked against its part hashes (the manifest's `weights.parts`: the sha256 of each
 * 256 MiB range, compiler/weights-file.ts) on worker threads (compiler/hash.ts sha256Parts), while
 * the caller uploads the file. One sha256 stream ran at 1.04 GB/s on an H200 host's core (session 37's
 * call H6: 8 GiB in 8.2 s, before its upload began); on 8 threads that file's parts took 1.2-1.6 s,
 * and with the upload at once 1.8-1.9 s (bench/RESULTS.md).
 *
 * checkWeightParts(path, parts, bytes) starts the workers and returns at once; join() waits for them
 * (synchronously: loadModel is) and throws, naming the file and the byte range, at the first part
 * whose sha256 is not the manifest's. Where there are no part hashes (an artifact from before them)
 * the runtime hashes the whole file before loading, as it did (runtime/gpu/artifact.ts).
 */
import { fail } from '../../compiler/errors.ts';
import { partThreads, sha256Parts } from '../../compiler/hash.ts';

export interface WeightParts { bytes: number; sha256: string[] }

export function checkWeightParts(path: string, parts: WeightParts, bytes: number, threads = partThreads(parts.sha256.length)): { join(): void } {
  const count = Math.ceil(bytes / parts.bytes);
  if (parts.sha256.length !== count) fail(path, `${count} part hashes for ${bytes} bytes in parts of ${parts.bytes} (the manifest's weights.parts)`, `${parts.sha256.length}`);
  const hashing = sha256Parts(path, parts.bytes, bytes, threads);
  return {
    join() {
      const got = hashing.join(); // throws, naming the earliest part it could not read
      for (let i = 0; i < count; i++) {
        if (got[i] !== parts.sha256[i]) {
          const end = Math.min(bytes, (i + 1) * parts.bytes);
          fail(path, `sha256 ${parts.sha256[i].slice(0, 16)}... for bytes [${i * parts.bytes}, ${end}) (the manifest's weights.parts[${i}])`, `${got[i].slice(0, 16)}...: the file was modified`);
        }
      }
    },
  };
}
