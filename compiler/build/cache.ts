/**
 * The content-addressed cubin cache.
 *
 * key = sha256 of (format version, the exact text nvcc compiles, the full `nvcc --version` text,
 * the flag list, the target). The text nvcc compiles starts with `#line 1 "/kernels/<name>.cu"`,
 * so the unit's name is in the key as well.
 *
 * Layout: cacheDir/<key>.cubin and cacheDir/<key>.json (the metadata: the cubin's sha256 and size,
 * the saved ptxas report, nvcc time). Each file is written to a unique temporary name and renamed
 * into place, the cubin first and the json last, so the json's presence means a complete entry; a
 * reader also checks the cubin's hash against the json and treats any mismatch, missing file or
 * unreadable json as a miss (the rebuild then overwrites it). Only successful compiles are
 * written; a unit nvcc rejects leaves nothing behind.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildTarget } from './types.ts';
import { sha256 } from '../hash.ts';

export const CACHE_FORMAT = 1;

export interface CacheMeta {
  format: number;
  key: string;
  name: string;
  target: BuildTarget;
  nvccVersion: string;
  cubinSha256: string;
  cubinBytes: number;
  /** nvcc's stderr + stdout of the compile: the ptxas report, re-parsed on every hit. */
  log: string;
  nvccSeconds: number;
}


export function cacheKey(compiledText: string, nvccVersionText: string, flags: string[], target: BuildTarget): string {
  return sha256(JSON.stringify({ format: CACHE_FORMAT, source: compiledText, nvcc: nvccVersionText, flags, target }));
}

export async function readCache(cacheDir: string, key: string): Promise<{ meta: CacheMeta; cubin: Uint8Array } | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(cacheDir, `${key}.json`), 'utf8')) as CacheMeta;
    if (meta.format !== CACHE_FORMAT || meta.key !== key) return undefined;
    const cubin = new Uint8Array(await readFile(join(cacheDir, `${key}.cubin`)));
    if (cubin.byteLength !== meta.cubinBytes || sha256(cubin) !== meta.cubinSha256) return undefined;
    return { meta, cubin };
  } catch {
    return undefined;
  }
}

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export async function writeCache(cacheDir: string, meta: CacheMeta, cubin: Uint8Array): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  await writeAtomic(join(cacheDir, `${meta.key}.cubin`), cubin);
  await writeAtomic(join(cacheDir, `${meta.key}.json`), JSON.stringify(meta, null, 1));
}
