/**
 * buildKernels: compiles kernel units to cubins with nvcc, in parallel, through the content-hash
 * cache, and checks the ptxas resource report.
 *
 * Per unit: validate the name; prefix the source with `#line 1 "/kernels/<name>.cu"` (compiler
 * messages and line info name the unit, and the cubin does not record the temporary folder it was
 * built in, so a rebuild is byte-identical); key it; on a cache hit take the cubin and the saved
 * ptxas report; on a miss run nvcc in a private temporary folder and store the result in the cache.
 *
 * Order of failure: a missing/too-old nvcc fails before any unit runs. A unit nvcc rejects stops
 * new units from starting, the ones in flight finish (and are cached), then the first failed unit
 * (in input order) is thrown with nvcc's first error lines. Spill policy is checked last, on hits
 * and misses alike: a cubin that spills is a valid compile and stays cached (so accepting the
 * spill later is a hit), but a spill in a hot unit without acceptSpills fails the build (except in
 * the functions the caller tolerates, to act on them itself), and so do wgmma that ptxas serialized.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompileError } from '../errors.ts';
import { cacheKey, CACHE_FORMAT, readCache, writeCache } from './cache.ts';
import { sha256 } from '../hash.ts';
import { nvccFlags, TARGET_ARCH } from './flags.ts';
import { checkNvccSupports, firstErrors, nvccVersionText, resolveNvcc, runNvcc, shortVersion } from './nvcc.ts';
import { runPool } from './pool.ts';
import { parsePtxasReport, spills } from './ptxas.ts';
import type { BuildOptions, BuildReport, BuildTarget, KernelSource, UnitReport } from './types.ts';

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** The exact text handed to nvcc for a unit. */
export const compiledText = (unit: KernelSource): string => `#line 1 "/kernels/${unit.name}.cu"\n${unit.source}`;

interface Built {
  report: UnitReport;
  cubin: Uint8Array;
}
type Outcome = { built: Built } | { error: unknown };

export async function buildKernels(units: KernelSource[], options: BuildOptions): Promise<BuildReport> {
  const start = performance.now();
  const { target, cacheDir } = options;
  if (!(target in TARGET_ARCH)) throw new CompileError({ where: 'build target', expected: "'h100' or 'b200'", found: `'${String(target)}'` });
  checkNames(units);
  const nvcc = resolveNvcc(options.nvcc);
  const versionText = await nvccVersionText(nvcc);
  checkNvccSupports(versionText, target, nvcc);
  const flags = nvccFlags(target);
  const jobs = Math.max(1, Math.floor(options.jobs ?? availableParallelism()));

  const outcomes = await runPool(
    units,
    jobs,
    async (unit): Promise<Outcome> => {
      try {
        return { built: await buildUnit(unit, { nvcc, versionText, flags, target, cacheDir }) };
      } catch (error) {
        return { error };
      }
    },
    (o) => 'error' in o,
  );
  const failed = outcomes.find((o): o is { error: unknown } => o !== undefined && 'error' in o);
  if (failed) throw failed.error;

  const built = outcomes.map((o) => (o as { built: Built }).built);
  checkSpills(units, built, TARGET_ARCH[target].sm, options.tolerateSpills);
  const reports = built.map((b) => b.report);
  return {
    kernels: reports.length,
    cached: reports.filter((u) => u.cached).length,
    spills: reports.reduce((n, u) => n + u.functions.filter(spills).length, 0),
    seconds: (performance.now() - start) / 1000,
    nvccVersion: shortVersion(versionText),
    target,
    flags,
    units: reports,
    cubins: new Map(built.map((b) => [b.report.name, b.cubin])),
  };
}

function checkNames(units: KernelSource[]): void {
  const seen = new Set<string>();
  for (const u of units) {
    if (!NAME.test(u.name)) throw new CompileError({ where: `kernel unit '${u.name}'`, expected: 'a file-safe name ([A-Za-z0-9_.-], not starting with . or -)', found: JSON.stringify(u.name) });
    if (seen.has(u.name)) throw new CompileError({ where: `kernel unit '${u.name}'`, expected: 'unit names unique within one build', found: 'a second unit with this name' });
    seen.add(u.name);
  }
}

interface UnitContext {
  nvcc: string;
  versionText: string;
  flags: string[];
  target: BuildTarget;
  cacheDir: string;
}

async function buildUnit(unit: KernelSource, ctx: UnitContext): Promise<Built> {
  const text = compiledText(unit);
  const key = cacheKey(text, ctx.versionText, ctx.flags, ctx.target);
  const hit = await readCache(ctx.cacheDir, key);
  if (hit) return { cubin: hit.cubin, report: unitReport(unit.name, key, hit.cubin, true, hit.meta.log, hit.meta.nvccSeconds) };

  const work = await mkdtemp(join(tmpdir(), 'nvcc-unit-'));
  try {
    const cu = `${unit.name}.cu`;
    const out = `${unit.name}.cubin`;
    await writeFile(join(work, cu), text);
    const run = await runNvcc(ctx.nvcc, [...ctx.flags, '-o', out, cu], work);
    if (!run.ok) {
      throw new CompileError({
        where: `kernel unit '${unit.name}' (nvcc for ${TARGET_ARCH[ctx.target].sm})`,
        expected: 'CUDA source that compiles',
        found: `${run.reason}: ${firstErrors(run.log) || 'no message'}`,
      });
    }
    const cubin = new Uint8Array(await readFile(join(work, out)));
    if (cubin.byteLength < 4 || cubin[0] !== 0x7f || cubin[1] !== 0x45 || cubin[2] !== 0x4c || cubin[3] !== 0x46) {
      throw new CompileError({ where: `kernel unit '${unit.name}' (nvcc for ${TARGET_ARCH[ctx.target].sm})`, expected: 'an ELF cubin', found: `${cubin.byteLength} bytes without the ELF magic` });
    }
    await writeCache(ctx.cacheDir, {
      format: CACHE_FORMAT,
      key,
      name: unit.name,
      target: ctx.target,
      nvccVersion: shortVersion(ctx.versionText),
      cubinSha256: sha256(cubin),
      cubinBytes: cubin.byteLength,
      log: run.log,
      nvccSeconds: run.seconds,
    }, cubin);
    return { cubin, report: unitReport(unit.name, key, cubin, false, run.log, run.seconds) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function unitReport(name: string, key: string, cubin: Uint8Array, cached: boolean, log: string, nvccSeconds: number): UnitReport {
  const warnings = log.split(/\r?\n/).map((l) => l.trim()).filter((l) => /\bwarning\b/i.test(l));
  return { name, key, cubinBytes: cubin.byteLength, cached, nvccSeconds, functions: parsePtxasReport(log), warnings };
}

function checkSpills(units: KernelSource[], built: Built[], sm: string, tolerate?: (functionName: string) => boolean): void {
  const bad: { unit: string; text: string }[] = [];
  units.forEach((u, i) => {
    if (!u.hot) return;
    // Serialized wgmma (ptxas C7515 and its kin) cost an MMA kernel most of its speed (bench/RESULTS.md "Session 25"): never accepted.
    for (const f of built[i]!.report.functions.filter((fn) => fn.wgmmaSerialized)) {
      bad.push({ unit: u.name, text: `'${u.name}' function '${f.name}': wgmma serialized by ptxas (${f.wgmmaSerialized})` });
    }
    if (u.acceptSpills) return;
    for (const f of built[i]!.report.functions.filter((fn) => spills(fn) && !tolerate?.(fn.name))) {
      bad.push({ unit: u.name, text: `'${u.name}' function '${f.name}': ${f.spillStoreBytes} bytes spill stores, ${f.spillLoadBytes} bytes spill loads (${f.registers} registers)` });
    }
  });
  if (!bad.length) return;
  const texts = bad.map((b) => b.text);
  throw new CompileError({
    where: `hot kernel unit '${bad[0]!.unit}' (${sm})`,
    expected: 'no register spills (or acceptSpills in its descriptor) and no serialized wgmma in a hot kernel',
    found: texts.length > 3 ? `${texts.slice(0, 3).join('; ')}; and ${texts.length - 3} more` : texts.join('; '),
  });
}
