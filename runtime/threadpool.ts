/**
 * Sizes libuv's thread pool for the image-serving processes (serve, bench, the GPU run CLI), which
 * deflate each PNG in parallel row ranges on it (runtime/pipeline/png.ts MAX_PARTS, read when
 * png.ts loads): one thread a core, 4 (libuv's default) to 8, unless UV_THREADPOOL_SIZE is set.
 * libuv reads the variable when its pool first starts, so this module is each entry point's first
 * import (ES modules evaluate in import order: it runs before png.ts and before any pool work).
 */
import { availableParallelism } from 'node:os';

process.env.UV_THREADPOOL_SIZE ??= String(Math.min(8, Math.max(4, availableParallelism())));
