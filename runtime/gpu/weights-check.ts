/**
 * weights.bin checked against its part hashes (the manifest's `weights.parts`: the sha256 of each
 * 256 MiB range, compiler/weights-file.ts) on worker threads (compiler/hash.ts sha256Parts). One
 * sha256 stream ran at 1.04 GB/s on an H200 host's core (session 37's call H6: 8 GiB in 8.2 s).
 *
 * checkWeightParts(path, parts, bytes) starts the workers and returns at once; join() waits for them
 * (synchronously: loadModel is) and throws, naming the file and the byte range, at the first part
 * whose sha256 is not the manifest's. With HAND_OFF the threads' chunks are also the upload's
 * (runtime/gpu/model.ts uploadFile): the file is read once, on as many threads as hash it, and the
 * device gets the bytes that were hashed. Without it (a module over another's weights, which reads
 * only its own entries) they read for the hashes alone. Where there are no part hashes (an artifact
 * from before them) the runtime hashes the whole file before loading, as it did (runtime/gpu/artifact.ts).
 */
import { fail } from '../../compiler/errors.ts';
import { type HandOff, type HandedChunks, partThreads, sha256Parts } from '../../compiler/hash.ts';
import { alignedShared } from './cuda.ts';

export interface WeightParts { bytes: number; sha256: string[] }

/** How weights.bin's reading threads hand their chunks to the upload: 16 MiB chunks, two slots a thread, in page-aligned shared memory. */
export const HAND_OFF: HandOff = { chunkBytes: 16 << 20, perWorker: 2, memory: (bytes) => alignedShared(bytes) };

/**
 * With `handOff` the reading threads' chunks are the caller's too (`chunks`): the caller must take and release every
 * one (uploadFile), or abort(); the threads wait for their slots meanwhile. `threads`: how many read.
 */
export function checkWeightParts(
  path: string, parts: WeightParts, bytes: number, threads = partThreads(parts.sha256.length), handOff?: HandOff,
): { join(): void; chunks?: HandedChunks; threads: number } {
  const count = Math.ceil(bytes / parts.bytes);
  if (parts.sha256.length !== count) fail(path, `${count} part hashes for ${bytes} bytes in parts of ${parts.bytes} (the manifest's weights.parts)`, `${parts.sha256.length}`);
  const hashing = sha256Parts(path, parts.bytes, bytes, threads, handOff);
  return {
    threads: hashing.threads,
    join() {
      const got = hashing.join(); // throws, naming the earliest part it could not read
      for (let i = 0; i < count; i++) {
        if (got[i] !== parts.sha256[i]) {
          const end = Math.min(bytes, (i + 1) * parts.bytes);
          fail(path, `sha256 ${parts.sha256[i].slice(0, 16)}... for bytes [${i * parts.bytes}, ${end}) (the manifest's weights.parts[${i}])`, `${got[i].slice(0, 16)}...: the file was modified`);
        }
      }
    },
    ...(hashing.chunks ? { chunks: hashing.chunks } : {}),
  };
}
