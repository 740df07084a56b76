/**
 * The GEMM algorithms load-time tuning chose (cublaslt.ts tune()), kept on disk per device and
 * cuBLASLt version so a later load of any module (and a later module of the same load: the shapes
 * its variants share) reuses them: the load skips the timing (the Qwen-Image pipeline's ten modules,
 * bench/RESULTS.md "Session 8"), and a restart runs the algorithms the first load chose rather than
 * whatever timing picks that time. One JSON file: { format: 1, scopes: { SCOPE: { SHAPE_KEY: ALGO_HEX } } },
 * SCOPE = device name, compute capability and cuBLASLt version; ALGO_HEX = the 64-byte
 * cublasLtMatmulAlgo_t. A saved algorithm the library no longer accepts is timed again (tune()).
 *
 * Tuning is asked for: $DC_GEMM_TUNING "on" (this file at ~/.cache/dc/gemm-tuning.json) or a file
 * path. Unset or "off", nothing is timed: every shape runs the heuristic's first algorithm, a pure
 * function of the device model and cuBLASLt version, so a seed gives the same image on every card of
 * a kind. Timing noise decided otherwise (Qwen-Image's PNG bytes differed between fresh H200s,
 * bench/RESULTS.md "Session 36", calls F3-F5 against session 35's Y10), for 0.00-0.39 ms a run on
 * an H200 (call F3) once the compiler's own GEMM runs the transformers' FP8 GEMMs. A file that cannot be read or parsed counts as empty; one that cannot be
 * written is said in the log and the load goes on: the cache only saves time and keeps bytes stable.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const FORMAT = 1;
type File = { format: number; scopes: Record<string, Record<string, string>> };

/** The cache file when $DC_GEMM_TUNING asks for load-time tuning ("on" or a path); null when it is unset or "off" (no tuning). */
export function tuningCachePath(env: NodeJS.ProcessEnv = process.env): string | null {
  const given = env.DC_GEMM_TUNING;
  if (!given || given === 'off') return null;
  return given === 'on' ? join(homedir(), '.cache', 'dc', 'gemm-tuning.json') : given;
}

function readFile(path: string): File {
  try {
    const f = JSON.parse(readFileSync(path, 'utf8')) as File;
    if (f && f.format === FORMAT && f.scopes && typeof f.scopes === 'object') return f;
  } catch { /* absent or unreadable: empty */ }
  return { format: FORMAT, scopes: {} };
}

/** The algorithms saved for `scope`: shape key -> algorithm (64 bytes, hex). */
export function readTuning(path: string, scope: string): Map<string, string> {
  const saved = readFile(path).scopes[scope] ?? {};
  return new Map(Object.entries(saved).filter(([, hex]) => typeof hex === 'string' && /^[0-9a-f]{128}$/.test(hex)));
}

/** Adds `chosen` to `scope` (re-read first, so other processes' entries stay) and replaces the file atomically; returns why not, or null. */
export function writeTuning(path: string, scope: string, chosen: ReadonlyMap<string, string>): string | null {
  if (!chosen.size) return null;
  try {
    const f = readFile(path);
    f.scopes[scope] = { ...(f.scopes[scope] ?? {}), ...Object.fromEntries(chosen) };
    mkdirSync(dirname(path), { recursive: true });
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, `${JSON.stringify(f, null, 1)}\n`);
    renameSync(partial, path);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
