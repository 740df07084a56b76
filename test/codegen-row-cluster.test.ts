/**
 * Row kernels split over a thread-block cluster (render.ts rowCluster, a benchmark tuning: slower
 * than the default on the H100, so no kernel is clustered unless a tuning asks): which kernels a
 * tuning may cluster (readers ending in their only fp8 Quantize, such as Flux.2's deferred SwiGLU
 * readers, whose per-feature scales each CTA stages in shared memory), that the rendered column
 * mapping gives every 16-byte vector of a row to exactly one thread of one CTA, that the launch
 * geometry fits a cluster (grid a multiple of it, shared memory within an SM's), that an
 * out-of-range tuning is refused, and that the clustered kernels build for h100 and b200 without
 * spills. Their outputs were checked on the GPU bit for bit against the unclustered kernel
 * (test/gpu/cases.ts, CHECKED_TUNINGS; bench/results/row-kernels-swiglu-2026-11-26.md).
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { ROW_TUNING, type ElementwiseDescriptor, elementwiseDescriptor, withRowTuning } from '../compiler/codegen/elementwise.ts';
import { deferDequant } from '../compiler/codegen/plan.ts';
import { type RenderedKernel, renderElementwise, renderUnit, rowCluster } from '../compiler/codegen/render.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { SHARED_FULL } from './helpers/fixtures.ts';

const clusterOf = (k: RenderedKernel) => Number(/__cluster_dims__\((\d+), 1, 1\)/.exec(k.source)?.[1] ?? 1);

/**
 * The columns a rendered row kernel's threads read, from its own source: the vector loop's column
 * expression (`cb`, with dc_cb0 where clustered) evaluated for every rank, thread and vector j.
 */
function columnsOf(k: RenderedKernel, C: number): number[] {
  const js = (e: string) => e.replace(/\(long long\)/g, '').replace(/(\d+)LL/g, '$1');
  const cb0 = /const long long dc_cb0 = (.*);/.exec(k.source);
  const vec = /for \(int j = 0; j < (\d+); \+\+j\) \{ const long long cb = (.*?); /.exec(k.source)!;
  const f0 = cb0 ? new Function('tid', 'dc_rank', `return ${js(cb0[1])};`) : () => 0;
  const f = new Function('j', 'tid', 'dc_cb0', `return ${js(vec[2])};`);
  const cols: number[] = [];
  for (let rank = 0; rank < C; rank++) for (let tid = 0; tid < k.block; tid++) for (let j = 0; j < Number(vec[1]); j++) cols.push(f(j, tid, f0(tid, rank)));
  return cols.sort((a, b) => a - b);
}

const dq = (values: number) => ({ tok0: 0, f0: 2048, types: Array(values).fill('float'), values: ['xs', 'ws', 'b'].slice(0, values) });
/** SwiGLU + fp8 Quantize over rows of `cols`, the SwiGLU input a deferred GEMM's output (with a bias for 3 values). */
const swigluQuant = (cols: number, values = 2): ElementwiseDescriptor => ({
  kind: 'elementwise', mode: 'row', rows: 300, cols, compute: 'float', threads: 768, row: ROW_TUNING, results: ['t1', 't1_1'],
  inputs: [{ name: 'y', type: 'bf16', colStride: 1, rowDims: [{ size: 300, stride: 2 * cols + 4096 }], vector: true, swiglu: true, dequant: dq(values) }],
  outputs: [{ name: 'q', type: 'fp8e4m3', perRow: false }, { name: 's', type: 'float', perRow: true }],
  program: [{ op: 'SwiGLU', out: 't0', args: ['in0'], attrs: {} }, { op: 'Quantize', out: 't1', args: ['t0'], attrs: { format: 'fp8', axis: -1 } }],
});
/** Flux.2's single-block reader: Concat(attention output, SwiGLU(deferred GEMM window)) + Quantize. */
const concatQuant = (attn: number, mlp: number): ElementwiseDescriptor => ({
  ...swigluQuant(attn + mlp),
  inputs: [{ name: 'a', type: 'bf16', colStride: 1, rowDims: [{ size: 300, stride: attn }], vector: true, part: { start: 0, width: attn } },
    { name: 'y', type: 'bf16', colStride: 1, rowDims: [{ size: 300, stride: 3 * attn + 2 * mlp }], vector: true, swiglu: true, part: { start: attn, width: mlp }, dequant: dq(2) }],
  program: [{ op: 'Concat', out: 't0', args: ['in0', 'in1'], attrs: {} }, { op: 'Quantize', out: 't1', args: ['t0'], attrs: { format: 'fp8', axis: -1 } }],
});

describe('row kernels split over a cluster', () => {
  const two = { ...ROW_TUNING, cluster: 2 };
  it('clusters a row kernel only when a tuning asks, and only one that ends in its only fp8 Quantize', () => {
    // Flux.2's shapes (147 KB of fp32 scales a row): by default not clustered (measured slower).
    for (const d of [swigluQuant(18432), concatQuant(6144, 18432), swigluQuant(12288, 3)]) {
      expect(rowCluster(d), `${d.cols}`).toBe(1);
      expect(rowCluster(d, two), `${d.cols}`).toBe(2);
    }
    // Any quantizing SwiGLU row of 256-column blocks may be, deferred or not.
    expect(rowCluster(swigluQuant(2048), two)).toBe(2);
    expect(rowCluster({ ...swigluQuant(18432), inputs: swigluQuant(18432).inputs.map(({ dequant: _, ...i }) => i) }, two)).toBe(2);
    // Rows not of 256·C-column blocks: not clustered.
    expect(rowCluster(swigluQuant(2056), two)).toBe(1);
    // A row reduction that is a sum (a norm) would cross the halves: not clustered even when asked.
    const norm: ElementwiseDescriptor = { ...swigluQuant(18432), program: [{ op: 'SwiGLU', out: 't0', args: ['in0'], attrs: {} }, { op: 'RMSNormalization', out: 't1', args: ['t0', ''], attrs: { epsilon: 1e-6 } }] };
    expect(rowCluster(norm, { ...ROW_TUNING, cluster: 2 })).toBe(1);
    // An output besides the Quantize's codes and scales (the SwiGLU's bf16 values): the row cannot
    // be quantized one row behind, so not clustered.
    const also = swigluQuant(18432);
    expect(rowCluster({ ...also, outputs: [{ name: 'h', type: 'bf16', perRow: false }, ...also.outputs], results: ['t0', ...also.results] }, { ...ROW_TUNING, cluster: 2 })).toBe(1);
    // A tuning switches it off, or is refused out of range.
    expect(rowCluster(swigluQuant(18432), { ...ROW_TUNING, cluster: 1 })).toBe(1);
    expect(() => rowCluster(swigluQuant(18432), { ...ROW_TUNING, cluster: 9 })).toThrow(/row-kernel tuning: expected a cluster of 1 to 8 CTAs.*9/);
  });

  it('gives every vector of a row to one thread of one CTA, the grid a multiple of the cluster, shared memory within an SM', () => {
    // [descriptor, tuning, CTAs a cluster]: SwiGLU+Quantize [*, 18432] splits 4 ways into 576
    // vectors a CTA, which no thread count of the row template divides: not clustered.
    const cases: [ElementwiseDescriptor, Partial<typeof ROW_TUNING>, number][] = [
      [swigluQuant(18432), { cluster: 2 }, 2], [swigluQuant(18432), { cluster: 2, vectorsPerThread: 8 }, 2], [swigluQuant(18432), { cluster: 4 }, 1], [swigluQuant(18432), {}, 1],
      [concatQuant(6144, 18432), { cluster: 2 }, 2], [concatQuant(6144, 18432), { cluster: 2, vectorsPerThread: 8 }, 2], [concatQuant(6144, 18432), { cluster: 4, ctasPerSm: 2 }, 4], [concatQuant(6144, 18432), {}, 1],
      [swigluQuant(12288, 3), { cluster: 2 }, 2], [swigluQuant(12288, 3), { cluster: 4 }, 4],
    ];
    for (const [d, t, want] of cases) {
      {
        const k = renderElementwise(withRowTuning(d, { ...ROW_TUNING, ...t }));
        const C = clusterOf(k);
        expect(C, `${d.cols} ${JSON.stringify(t)}`).toBe(want);
        expect(columnsOf(k, C)).toEqual(Array.from({ length: d.cols / 8 }, (_, i) => 8 * i));
        expect(k.grid % C).toBe(0);
        expect(k.grid).toBeLessThanOrEqual(132 * (t.ctasPerSm ?? (C > 1 ? 1 : 4)));
        expect(k.sharedBytes * (t.ctasPerSm ?? 1)).toBeLessThanOrEqual(228 * 1024);
        expect(k.sharedBytes).toBeLessThanOrEqual(227 * 1024 - 512);
        // Clustered: the feature values come from shared memory, never from global memory per row.
        if (C > 1) expect(k.source).not.toMatch(/dc_load8<T>\(dq\d_[12]/);
        else expect(k.source).toMatch(/dc_load8<T>\(dq\d_1/);
      }
    }
  });

  const full = join(SHARED_FULL, 'flux2_dev', 'model.onnx');
  it.skipIf(!existsSync(full))('clusters none of Flux.2 [dev]\'s row kernels by default; asked, its deferred SwiGLU readers at 1024x1024 (and only those), which build for h100 and b200 without spills', async () => {
    const { graph: g0 } = importOnnx(full);
    const graph = runPipeline(inferTypes(specialise(g0, { img_tokens: 4096, txt_tokens: 512 })), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
    const deferred = deferDequant(graph);
    const clustered = new Map<string, RenderedKernel>();
    const others = new Set<string>();
    for (const n of graph.nodes.filter((x) => x.op === 'FusedKernel')) {
      const d = elementwiseDescriptor(graph, n, deferred);
      if (d.mode !== 'row') continue;
      expect(clusterOf(renderElementwise(d))).toBe(1);
      const k = renderElementwise(withRowTuning(d, two));
      const ops = (n.attrs.ops as string[]).join('+');
      if (clusterOf(k) > 1) clustered.set(`${ops} [${d.rows}, ${d.cols}]`, k);
      else others.add(ops);
    }
    expect([...clustered.keys()].sort()).toEqual(['SwiGLU+Concat+Quantize [4608, 24576]', 'SwiGLU+Quantize [4096, 18432]', 'SwiGLU+Quantize [512, 18432]']);
    expect([...others].some((o) => o.includes('SwiGLU'))).toBe(false); // every SwiGLU reader ends in its Quantize
    expect([...others].some((o) => o.includes('Norm'))).toBe(true); // norms are not split
    for (const target of ['h100', 'b200'] as const) {
      // Built as hot kernels: a spill fails the build.
      const r = await buildKernels([{ name: 'cluster_rows', source: renderUnit([...clustered.values()]), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'row-cluster-')) });
      expect(r.spills, target).toBe(0);
    }
  }, 300_000);
});
