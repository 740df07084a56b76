/**
 * compiler/compile.ts buildWithSegments: a segmented kernel (ews_*) that spills when built is
 * launched as its segments — the plan is made again with it `separate` and rebuilt — while a spill in
 * any other hot kernel still fails the build, naming it. Built with nvcc (present in CI), for h100.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KernelPlan } from '../../compiler/codegen/plan.ts';
import type { RenderedKernel } from '../../compiler/codegen/render.ts';
import { buildWithSegments } from '../../compiler/compile.ts';

// 48 values live at once in 32 registers a thread (1024 threads, 2 CTAs an SM): ptxas spills.
const spilling = (name: string): RenderedKernel => ({
  name, hot: true, grid: 1, block: 1024, sharedBytes: 0,
  source: `extern "C" __global__ void __launch_bounds__(1024, 2) ${name}(const float* in, float* out) {
  float v[48];
#pragma unroll
  for (int i = 0; i < 48; ++i) v[i] = in[threadIdx.x + i * 1024];
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < 48; ++i)
#pragma unroll
    for (int j = 0; j < 48; ++j) s += v[i] * v[(i * 7 + j) % 48];
  out[threadIdx.x] = s;
}`,
});
const plain = (name: string): RenderedKernel => ({
  name, hot: true, grid: 1, block: 128, sharedBytes: 0,
  source: `extern "C" __global__ void ${name}(const float* in, float* out) { out[threadIdx.x] = 2.f * in[threadIdx.x]; }`,
});
const planOf = (kernels: RenderedKernel[]): KernelPlan => ({
  kernels, pending: {},
  launches: kernels.map((k) => ({ kind: 'kernel', node: k.name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: 0, args: [] })),
});

describe('buildWithSegments', () => {
  process.env.DC_KERNEL_CACHE = mkdtempSync(join(tmpdir(), 'kcache-')); // (this file's own process)
  it('a segmented kernel that spills is launched as its segments: planned again and rebuilt without it', async () => {
    const asked: string[][] = [];
    const separate = planOf([plain('ew_segment_a'), plain('ew_segment_b')]);
    const { plan, report } = await buildWithSegments(planOf([spilling('ews_spills')]), 'h100', (names) => {
      asked.push([...names]);
      return separate;
    });
    expect(asked).toEqual([['ews_spills']]);
    expect(plan).toBe(separate);
    expect(report.spills).toBe(0);
    const built = report.units.flatMap((u) => u.functions.map((f) => f.name));
    expect(built).toEqual(expect.arrayContaining(['ew_segment_a', 'ew_segment_b']));
    expect(built).not.toContain('ews_spills');
  }, 120_000);

  it('a plan whose segmented kernels do not spill is built once, as it is', async () => {
    const first = planOf([plain('ews_fine')]);
    const { plan } = await buildWithSegments(first, 'h100', () => { throw new Error('not asked'); });
    expect(plan).toBe(first);
  }, 120_000);

  it('a spill in another hot kernel fails the build, naming it', async () => {
    await expect(buildWithSegments(planOf([spilling('ew_spills')]), 'h100', () => planOf([]))).rejects.toThrow(/hot kernel unit 'kernels_hot'.*'ew_spills'.*spill stores/);
  }, 120_000);
});
