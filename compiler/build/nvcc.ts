/**
 * Running nvcc: finding it, asking its version, compiling one unit, and turning every way that can
 * fail into a one-line CompileError (never a stack trace).
 *
 * nvcc is found from options.nvcc, else $NVCC, else PATH; a missing or non-executable nvcc is
 * reported before anything is spawned. The version string is memoised per resolved binary (path,
 * size, mtime), so a fully cached build spawns nothing after its first --version.
 *
 * NVCC_PREPEND_FLAGS / NVCC_APPEND_FLAGS are removed from nvcc's environment: they would change
 * the generated code behind the cache key's back.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { execa } from 'execa';
import { CompileError } from '../errors.ts';
import type { BuildTarget } from './types.ts';
import { TARGET_ARCH } from './flags.ts';

const EXPECTED_NVCC = "the CUDA toolkit's nvcc (12.8+ or 13) on PATH or in $NVCC";

/** Absolute path of the nvcc to run, or a CompileError naming what was looked for. */
export function resolveNvcc(nvcc?: string): string {
  const wanted = nvcc ?? process.env.NVCC ?? 'nvcc';
  const candidates = wanted.includes('/') || isAbsolute(wanted)
    ? [resolve(wanted)]
    : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, wanted));
  for (const path of candidates) {
    try {
      if (!statSync(path).isFile()) continue;
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      /* next candidate */
    }
  }
  const found = candidates.length === 1 ? `no executable at ${candidates[0]}` : `no '${wanted}' on PATH`;
  throw new CompileError({ where: 'nvcc', expected: EXPECTED_NVCC, found });
}

export function nvccEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NVCC_PREPEND_FLAGS;
  delete env.NVCC_APPEND_FLAGS;
  return env;
}

const versions = new Map<string, Promise<string>>();

/**
 * The full `nvcc --version` text, trimmed (release, V-number and build id: it goes into cache
 * keys). Use `shortVersion` for display.
 */
export function nvccVersionText(nvcc?: string): Promise<string> {
  const path = resolveNvcc(nvcc);
  const st = statSync(path);
  const memo = `${path}|${st.size}|${st.mtimeMs}`;
  let v = versions.get(memo);
  if (!v) {
    v = execa(path, ['--version'], { env: nvccEnv(), extendEnv: false, reject: false }).then((r) => {
      if (r.failed || !/release \d+\.\d+/.test(r.stdout)) {
        versions.delete(memo);
        throw new CompileError({ where: `nvcc (${path})`, expected: `${EXPECTED_NVCC} answering --version`, found: oneLine(r.stderr || r.stdout || r.shortMessage || '') });
      }
      return r.stdout.trim();
    });
    versions.set(memo, v);
  }
  return v;
}

/** e.g. "13.0.88 (cuda_13.0.r13.0/compiler.36424714_0)". */
export function shortVersion(text: string): string {
  const v = text.match(/release [\d.]+, V([\d.]+)/)?.[1] ?? text.match(/release ([\d.]+)/)?.[1] ?? 'unknown';
  const build = text.match(/^Build (\S+)/m)?.[1];
  return build ? `${v} (${build})` : v;
}

/** The nvcc version for display, e.g. "13.0.88 (cuda_13.0.r13.0/compiler.36424714_0)". */
export async function nvccVersion(nvcc?: string): Promise<string> {
  return shortVersion(await nvccVersionText(nvcc));
}

/** Fails unless this nvcc knows the target's architecture. */
export function checkNvccSupports(versionText: string, target: BuildTarget, path: string): void {
  const m = versionText.match(/release (\d+)\.(\d+)/);
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  const [wantMajor, wantMinor] = TARGET_ARCH[target].minCuda;
  if (major < wantMajor || (major === wantMajor && minor < wantMinor)) {
    throw new CompileError({
      where: `nvcc (${path})`,
      expected: `CUDA ${wantMajor}.${wantMinor}+ for ${TARGET_ARCH[target].sm} (target ${target})`,
      found: m ? `CUDA ${major}.${minor}` : 'an unrecognised --version output',
    });
  }
}

export interface NvccRun {
  ok: boolean;
  /** stderr then stdout: the ptxas report on success, the diagnostics on failure. */
  log: string;
  seconds: number;
  /** Why it failed, one line (exit code, signal, spawn error). */
  reason: string;
}

export async function runNvcc(path: string, args: string[], cwd: string): Promise<NvccRun> {
  const start = performance.now();
  const r = await execa(path, args, { cwd, env: nvccEnv(), extendEnv: false, reject: false, stdin: 'ignore' });
  const seconds = (performance.now() - start) / 1000;
  const log = [r.stderr, r.stdout].filter(Boolean).join('\n');
  if (r.code === 'ENOENT' || r.code === 'EACCES') {
    throw new CompileError({ where: 'nvcc', expected: EXPECTED_NVCC, found: `${r.code} running ${path}` });
  }
  const reason = r.signal ? `nvcc killed by ${r.signal}` : r.failed ? `nvcc exit code ${r.exitCode ?? r.code ?? '?'}` : '';
  return { ok: !r.failed, log, seconds, reason };
}

/**
 * The first diagnostics of a failed compile, one line: error lines first (`file(line): error:
 * ...`, `ptxas error : ...`, `nvcc fatal : ...`), else the first lines of the log; at most
 * `maxLines` lines and `maxChars` characters.
 */
export function firstErrors(log: string, maxLines = 3, maxChars = 600): string {
  const lines = log.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /\b(error|fatal)\b/i.test(l) && !/^\d+ errors? detected/.test(l));
  const picked = (errors.length ? errors : lines).slice(0, maxLines);
  const more = errors.length > maxLines ? ` (+${errors.length - maxLines} more)` : '';
  const text = picked.join(' | ') + more;
  return text.length > maxChars ? `${text.slice(0, maxChars - 3)}...` : text;
}

export const oneLine = (s: string): string => firstErrors(s, 2, 300) || 'no output';
