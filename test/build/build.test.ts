// buildKernels against the real nvcc (CPU-only: nothing built runs here). A wrapper script in
// front of nvcc logs each invocation, so cache hits are observed as "nvcc was not run".
// Units are tiny (about 0.3-1 s of nvcc each); the file stays well under a minute on 2 cores.
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildKernels, nvccVersion, resolveNvcc, type KernelSource } from '../../compiler/build/index.ts';
import { CompileError } from '../../compiler/errors.ts';

const ADD = `extern "C" __global__ void add_one(const float* __restrict__ a, float* __restrict__ b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) b[i] = a[i] + 1.0f;
}
`;
// 64 live floats under __launch_bounds__(1024, 2) (at most 32 registers): ptxas must spill.
const SPILL = `extern "C" __global__ void __launch_bounds__(1024, 2) spilly(float* out, const float* in, int n) {
  float v[64];
#pragma unroll
  for (int i = 0; i < 64; i++) v[i] = in[i * 1024 + threadIdx.x];
  for (int j = 0; j < n; j++) {
#pragma unroll
    for (int i = 0; i < 64; i++) v[i] = v[i] * v[(i + 1) % 64] + 1.0f;
  }
  float acc = 0.0f;
#pragma unroll
  for (int i = 0; i < 64; i++) acc += v[i];
  out[threadIdx.x] = acc;
}
`;
// Accumulators loaded on one path only, then MMAs (scale-d decided at run time) with a group kept in flight
// around the loop: ptxas serializes the wgmma (C7515), as it did session 25's stream-K GEMM.
const SERIAL = `#include <cstdint>
__device__ __forceinline__ void mma(float* d, uint64_t da, uint64_t db, int scaleD) {
  asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %6, 0;\\nwgmma.mma_async.sync.aligned.m64n8k32.f32.e4m3.e4m3 {%0, %1, %2, %3}, %4, %5, p, 1, 1;\\n}\\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "l"(da), "l"(db), "r"(scaleD));
}
extern "C" __global__ void __launch_bounds__(128) serialized(const float* in, float* out, uint64_t da, uint64_t db, int n) {
  float acc[4];
  if (n > 8) for (int i = 0; i < 4; ++i) acc[i] = in[4 * threadIdx.x + i];
  for (int k = 0; k < n; ++k) {
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
    mma(acc, da + 2 * k, db + 2 * k, k > 0 || n > 8);
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
    asm volatile("wgmma.wait_group.sync.aligned 1;" ::: "memory");
  }
  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");
  for (int i = 0; i < 4; ++i) out[4 * threadIdx.x + i] = acc[i];
}
`;
const BAD = `extern "C" __global__ void broken(float* o) {
  o[0] = not_declared + 1.0f;
}
`;

let root: string;
let nvcc: string;
let calls: string;
const compiles = () => readFileSync(calls, 'utf8').split('\n').filter((l) => l.includes('-cubin')).length;
const entries = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };
const isElf = (b: Uint8Array) => b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46;
const unit = (name: string, source: string, hot = true, acceptSpills?: boolean): KernelSource => ({ name, source, hot, acceptSpills });

async function compileError(p: Promise<unknown>): Promise<CompileError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(CompileError);
  return e as CompileError;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'build-test-'));
  calls = join(root, 'calls.log');
  writeFileSync(calls, '');
  nvcc = join(root, 'nvcc');
  writeFileSync(nvcc, `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${resolveNvcc()}' "$@"\n`);
  chmodSync(nvcc, 0o755);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('buildKernels', () => {
  it('builds a tiny kernel for h100 and b200 and reports its resources', async () => {
    for (const [target, sm] of [['h100', 'sm_90a'], ['b200', 'sm_100a']] as const) {
      const r = await buildKernels([unit('add', ADD)], { target, cacheDir: join(root, `cache-${target}`), nvcc });
      expect(r).toMatchObject({ kernels: 1, cached: 0, spills: 0, target });
      expect(r.flags).toContain(`arch=compute_${sm.slice(3)},code=${sm}`);
      expect(r.flags).not.toContain('--use_fast_math');
      expect(r.nvccVersion).toMatch(/^\d+\.\d+\.\d+/);
      const cubin = r.cubins.get('add')!;
      expect(cubin.byteLength).toBeGreaterThan(0);
      expect(isElf(cubin)).toBe(true);
      expect(r.units[0]!.cubinBytes).toBe(cubin.byteLength);
      const f = r.units[0]!.functions.find((x) => x.name === 'add_one')!;
      expect(f.entry).toBe(true);
      expect(f.registers).toBeGreaterThan(0);
      expect(f.spillStoreBytes + f.spillLoadBytes).toBe(0);
    }
    expect(compiles()).toBe(2);
  });

  it('serves a second build from the cache without running nvcc, byte for byte', async () => {
    const before = compiles();
    const r = await buildKernels([unit('add', ADD)], { target: 'h100', cacheDir: join(root, 'cache-h100'), nvcc });
    expect(compiles()).toBe(before);
    expect(r).toMatchObject({ kernels: 1, cached: 1 });
    expect(r.units[0]!.cached).toBe(true);
    expect(r.units[0]!.functions.map((f) => f.name)).toEqual(['add_one']);
    // A cold build elsewhere gives the same bytes: the cubin does not record where it was built.
    const cold = await buildKernels([unit('add', ADD)], { target: 'h100', cacheDir: join(root, 'cache-other'), nvcc });
    expect(cold.cached).toBe(0);
    expect(Buffer.from(cold.cubins.get('add')!).equals(Buffer.from(r.cubins.get('add')!))).toBe(true);
    // A corrupted entry is a miss, not a bad cubin.
    const dir = join(root, 'cache-other');
    const cubinFile = entries(dir).find((f) => f.endsWith('.cubin'))!;
    writeFileSync(join(dir, cubinFile), 'garbage');
    const again = await buildKernels([unit('add', ADD)], { target: 'h100', cacheDir: dir, nvcc });
    expect(again.cached).toBe(0);
    expect(isElf(again.cubins.get('add')!)).toBe(true);
  });

  it('names the unit and shows nvcc\'s error line for a source that does not compile; caches nothing', async () => {
    const dir = join(root, 'cache-bad');
    const before = compiles();
    const e = await compileError(buildKernels([unit('broken_unit', BAD)], { target: 'h100', cacheDir: dir, nvcc }));
    expect(e.message).toContain("kernel unit 'broken_unit'");
    expect(e.message).toMatch(/broken_unit\.cu\(2\): error: identifier "not_declared" is undefined/);
    expect(e.message).not.toContain('\n');
    expect(entries(dir)).toEqual([]);
    // Not cached: building it again runs nvcc again.
    await compileError(buildKernels([unit('broken_unit', BAD)], { target: 'h100', cacheDir: dir, nvcc }));
    expect(compiles()).toBe(before + 2);
    expect(entries(dir)).toEqual([]);
  });

  it('reports a missing nvcc clearly', async () => {
    const e = await compileError(buildKernels([unit('add', ADD)], { target: 'h100', cacheDir: join(root, 'cache-none'), nvcc: '/nonexistent/nvcc' }));
    expect(e.message).toBe("nvcc: expected the CUDA toolkit's nvcc (12.8+ or 13) on PATH or in $NVCC, found no executable at /nonexistent/nvcc");
    await expect(nvccVersion('/nonexistent/nvcc')).rejects.toBeInstanceOf(CompileError);
  });

  it('fails a hot kernel whose wgmma ptxas serialized, acceptSpills or not; a cold one reports it', async () => {
    const dir = join(root, 'cache-serial');
    const e = await compileError(buildKernels([unit('serial_unit', SERIAL, true, true)], { target: 'h100', cacheDir: dir, nvcc }));
    expect(e.message).toContain("hot kernel unit 'serial_unit'");
    expect(e.message).toContain("function 'serialized': wgmma serialized by ptxas (C7515: non wgmma instructions defining accumulator registers");
    const cold = await buildKernels([unit('serial_unit', SERIAL, false)], { target: 'h100', cacheDir: dir, nvcc });
    expect(cold.units[0]!.functions.find((f) => f.name === 'serialized')?.wgmmaSerialized).toMatch(/^C7515: non wgmma instructions defining accumulator registers of a wgmma between start and end of the pipeline stage$/);
  });

  it('fails a hot kernel that spills unless acceptSpills is set', async () => {
    const dir = join(root, 'cache-spill');
    const e = await compileError(buildKernels([unit('add', ADD), unit('spill_unit', SPILL)], { target: 'h100', cacheDir: dir, nvcc, jobs: 2 }));
    expect(e.message).toContain("hot kernel unit 'spill_unit'");
    expect(e.message).toMatch(/function 'spilly': \d+ bytes spill stores, \d+ bytes spill loads/);
    const before = compiles();
    const ok = await buildKernels([unit('spill_unit', SPILL, true, true)], { target: 'h100', cacheDir: dir, nvcc });
    expect(ok).toMatchObject({ kernels: 1, cached: 1, spills: 1 });
    const f = ok.units[0]!.functions.find((x) => x.name === 'spilly')!;
    expect(f.spillStoreBytes).toBeGreaterThan(0);
    expect(f.registers).toBeLessThanOrEqual(32);
    // Not hot: spills are reported, not fatal.
    const cold = await buildKernels([unit('spill_unit', SPILL, false)], { target: 'h100', cacheDir: dir, nvcc });
    expect(cold.spills).toBe(1);
    expect(compiles()).toBe(before);
  });

  it('rejects unsafe or duplicate unit names before running nvcc', async () => {
    const opts = { target: 'h100' as const, cacheDir: join(root, 'cache-names'), nvcc };
    expect((await compileError(buildKernels([unit('../x', ADD)], opts))).message).toContain('file-safe name');
    expect((await compileError(buildKernels([unit('a', ADD), unit('a', ADD)], opts))).message).toContain('unique');
  });
});
