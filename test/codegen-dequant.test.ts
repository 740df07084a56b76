/**
 * Deferred dequantization (compiler/codegen/dequant.ts) on the CPU machine: which FP8 GEMMs leave
 * their scales to their readers, what each reader is told (token scales, channel scales, bias, the
 * window's first feature), that the memory plan keeps the token scales alive until the last reader
 * (without lateReads the tiny Flux.2 plan lets a later value overwrite them: the GPU bug this
 * guards against), that every launch passes as many arguments as its kernel has parameters, and
 * that the dequantizing kernels build for both targets. Their numerics are checked on the GPU
 * (bench/RESULTS.md, "Deferred dequantization": tiny models and the full-size same-weights check).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { lateReads, rowsAreTokens } from '../compiler/codegen/dequant.ts';
import { ROW_TUNING, type ElementwiseDescriptor, elementwiseDescriptor } from '../compiler/codegen/elementwise.ts';
import { deferDequant, kernelPlan } from '../compiler/codegen/plan.ts';
import { renderElementwise, renderUnit } from '../compiler/codegen/render.ts';
import { resolveView } from '../compiler/codegen/views.ts';
import { type Graph, consumers } from '../compiler/ir/graph.ts';
import { isLaunch, loadTimeNodes } from '../compiler/launches.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';

const fp8Graph = (name: string): Graph => runPipeline(inferTypes(importOnnx(join(tinyDir(name), 'model.onnx')).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
const flux = fp8Graph('flux2');
const qwen = fp8Graph('qwen_image');
const qlinears = (g: Graph) => g.nodes.filter((n) => n.op === 'QLinear' && n.attrs.format === 'fp8');
/** The launches reading a GEMM output (directly or through a view), with their node indices. */
const readersOf = (g: Graph, root: string) => {
  const users = consumers(g), loadTime = loadTimeNodes(g);
  return g.nodes.map((n, i) => [n, i] as const).filter(([n, i]) => !loadTime.has(i) && isLaunch(g, n, users) && n.inputs.some((v) => v && resolveView(g, v, 'test').root === root));
};

describe('deferred dequantization', () => {
  it('defers every FP8 GEMM of the tiny transformers: each is read only by element-wise kernels and attention packs', () => {
    for (const g of [flux, qwen]) {
      const deferred = deferDequant(g);
      expect([...deferred.keys()].sort()).toEqual(qlinears(g).map((n) => n.outputs[0]).sort());
      for (const n of qlinears(g)) {
        const [, xs, , ws, bias] = n.inputs;
        expect(deferred.get(n.outputs[0])).toEqual({ xs, ws, ...(bias ? { bias } : {}), n: (g.types.get(n.outputs[0]) as unknown as { shape: number[] }).shape.at(-1) });
        for (const [r] of readersOf(g, n.outputs[0])) expect(['FusedKernel', 'SegmentedKernel', 'AttentionPack'], r.op).toContain(r.op);
      }
    }
    // Qwen-Image's projections have biases: the readers add them.
    expect([...deferDequant(qwen).values()].some((d) => d.bias)).toBe(true);
  });

  it('tells each element-wise reader the scales and the first feature of its window (the single blocks read the MLP part of the fused projection from feature 3·hidden)', () => {
    const deferred = deferDequant(flux);
    const concat = flux.nodes.filter((n) => n.op === 'FusedKernel' && (n.attrs.ops as string[]).join('+') === 'SwiGLU+Concat+Quantize');
    expect(concat.length).toBeGreaterThan(0);
    for (const n of concat) {
      const d = elementwiseDescriptor(flux, n, deferred);
      const mlp = d.inputs.find((i) => i.swiglu)!;
      const view = resolveView(flux, mlp.name, 'test');
      const gemm = deferred.get(view.root)!;
      expect(mlp.dequant).toEqual({ tok0: 0, f0: view.offset, types: ['float', 'float'], values: [gemm.xs, gemm.ws] });
      expect(view.offset).toBe(3 * d.inputs.find((i) => !i.swiglu && i.part)!.part!.width); // after q, k and v
      expect(d.undeferrable).toBeUndefined();
    }
    // Without the deferred set nothing is dequantized.
    expect(elementwiseDescriptor(flux, concat[0]).inputs.some((i) => i.dequant)).toBe(false);
  });

  it('keeps the GEMM\'s own scales where a reader cannot dequantize (a window wider than the rest of the row, broadcast rows)', () => {
    expect(rowsAreTokens([{ size: 1, stride: 0 }, { size: 256, stride: 1152 }], 1152)).toBe(true);
    expect(rowsAreTokens([{ size: 2, stride: 256 * 1152 }, { size: 256, stride: 1152 }], 1152)).toBe(true);
    expect(rowsAreTokens([{ size: 256, stride: 2304 }], 1152)).toBe(false); // every other row
    expect(rowsAreTokens([{ size: 4, stride: 0 }, { size: 256, stride: 1152 }], 1152)).toBe(false); // broadcast
    expect(rowsAreTokens([{ size: 1, stride: 0 }], 1152)).toBe(false); // one row: a row-invariant input
    // A reader given a candidate it cannot read as rows of tokens names it.
    const deferred = deferDequant(flux);
    const [root, gemm] = [...deferred].find(([r]) => readersOf(flux, r).some(([n]) => n.op === 'FusedKernel'))!;
    const reader = readersOf(flux, root).find(([r]) => r.op === 'FusedKernel')![0];
    const d = elementwiseDescriptor(flux, reader, new Map([[root, { ...gemm, n: gemm.n / 2 }]]));
    expect(d.undeferrable).toEqual([root]);
  });

  it('keeps each deferred GEMM\'s token scales alive until its last reader (and without lateReads they die at the GEMM)', () => {
    for (const g of [flux, qwen]) {
      const deferred = deferDequant(g);
      const late = lateReads(g, deferred);
      const withLate = planMemory(g, late), without = planMemory(g);
      let diedEarly = 0;
      for (const [root, { xs }] of deferred) {
        const lastReader = Math.max(...readersOf(g, root).map(([, i]) => i));
        const buffer = (m: typeof withLate) => m.buffers.find((b) => b.value === m.location.get(xs))!;
        expect(buffer(withLate).last, xs).toBeGreaterThanOrEqual(lastReader);
        if (buffer(without).last < lastReader) diedEarly++;
      }
      expect(diedEarly).toBeGreaterThan(0);
    }
  });

  it('passes every kernel as many arguments as it has parameters, the GEMMs unscaled', () => {
    for (const g of [flux, qwen]) {
      const deferred = deferDequant(g);
      const plan = kernelPlan(g, planMemory(g, lateReads(g, deferred)), deferred);
      const gemms = plan.launches.filter((l) => l.kind === 'gemm' && l.precision === 'fp8');
      expect(gemms.length).toBe(qlinears(g).length);
      expect(gemms.every((l) => l.kind === 'gemm' && l.unscaled)).toBe(true);
      const sources = new Map(plan.kernels.map((k) => [k.name, k.source]));
      for (const l of plan.launches) {
        if (l.kind !== 'kernel') continue;
        const signature = new RegExp(`${l.kernel}\\(([^)]*)\\)`).exec(sources.get(l.kernel)!)![1];
        expect(l.args.length, l.node).toBe(signature.split(',').length);
      }
      // The scaled plan (policy gemmScales "gemm") has no unscaled GEMM and no dequantizing kernel.
      const scaled = kernelPlan(g, planMemory(g));
      expect(scaled.launches.some((l) => l.kind === 'gemm' && l.unscaled)).toBe(false);
      expect(scaled.kernels.some((k) => /dqr\d|r_ = dc_load<float>/.test(k.source))).toBe(false);
    }
  });

  it('builds the dequantizing kernels for h100 and b200: the tiny plans (float) and bf16 rows of 16-byte vectors (standard, SwiGLU and Concat-part inputs, with a bias)', async () => {
    const deferred = deferDequant(flux);
    const plan = kernelPlan(flux, planMemory(flux, lateReads(flux, deferred)), deferred);
    const qd = deferDequant(qwen);
    const qplan = kernelPlan(qwen, planMemory(qwen, lateReads(qwen, qd)), qd);
    const dq = { tok0: 0, f0: 1024, types: ['float' as const, 'float' as const, 'float' as const], values: ['xs', 'ws', 'b'] };
    const row = (inputs: ElementwiseDescriptor['inputs'], program: ElementwiseDescriptor['program'], cols: number): ElementwiseDescriptor => ({
      kind: 'elementwise', mode: 'row', rows: 512, cols, compute: 'float', threads: 256, row: ROW_TUNING, results: [program.at(-1)!.out, `${program.at(-1)!.out}_1`],
      inputs, outputs: [{ name: 'q', type: 'fp8e4m3', perRow: false }, { name: 's', type: 'float', perRow: true }], program,
    });
    const wide = [
      row([{ name: 'y', type: 'bf16', colStride: 1, rowDims: [{ size: 512, stride: 8192 }], vector: true, dequant: dq }],
        [{ op: 'Quantize', out: 't0', args: ['in0'], attrs: { format: 'fp8', axis: -1 } }], 6144),
      row([{ name: 'y', type: 'bf16', colStride: 1, rowDims: [{ size: 512, stride: 8192 }], vector: true, swiglu: true, dequant: dq }],
        [{ op: 'SwiGLU', out: 't0', args: ['in0'], attrs: {} }, { op: 'Quantize', out: 't1', args: ['t0'], attrs: { format: 'fp8', axis: -1 } }], 2048),
      row([{ name: 'a', type: 'bf16', colStride: 1, rowDims: [{ size: 512, stride: 1024 }], vector: true, part: { start: 0, width: 1024 } },
        { name: 'y', type: 'bf16', colStride: 1, rowDims: [{ size: 512, stride: 8192 }], vector: true, swiglu: true, part: { start: 1024, width: 2048 }, dequant: dq }],
      [{ op: 'Concat', out: 't0', args: ['in0', 'in1'], attrs: {} }, { op: 'Quantize', out: 't1', args: ['t0'], attrs: { format: 'fp8', axis: -1 } }], 3072),
    ].map(renderElementwise);
    for (const k of wide) expect(k.source, k.name).toMatch(/dc_load8<T>\(dq\d_1, 1024LL \+ /);
    // A flat kernel element by element (12 columns: no 16-byte vectors): the dequantization inside each load.
    const scalar = renderElementwise({
      kind: 'elementwise', mode: 'flat', rows: 64, cols: 12, compute: 'float', threads: 256, results: ['t1'],
      inputs: [{ name: 'y', type: 'bf16', colStride: 1, rowDims: [{ size: 64, stride: 36 }], vector: false, swiglu: true, dequant: { tok0: 0, f0: 4, types: ['float', 'float', 'float'], values: ['xs', 'ws', 'b'] } },
        { name: 'r', type: 'bf16', colStride: 1, rowDims: [{ size: 64, stride: 12 }], vector: false }],
      outputs: [{ name: 'o', type: 'bf16', perRow: false }],
      program: [{ op: 'SwiGLU', out: 't0', args: ['in0'], attrs: {} }, { op: 'Add', out: 't1', args: ['t0', 'in1'], attrs: {} }],
    });
    expect(scalar.source).toMatch(/dqr0 \* dc_load<T>\(dq0_1, 4LL \+ col \+ 12LL\) \+ dc_load<T>\(dq0_2, 4LL \+ col \+ 12LL\)/);
    wide.push(scalar);
    // As compile.ts builds them: hot kernels in a unit that must not spill, the rest (trigonometry) apart.
    const kernels = [...plan.kernels, ...qplan.kernels, ...wide];
    for (const target of ['h100', 'b200'] as const) {
      const units = [{ name: 'dequant_hot', source: renderUnit(kernels.filter((k) => k.hot)), hot: true }, { name: 'dequant_cold', source: renderUnit(kernels.filter((k) => !k.hot)), hot: false }];
      const r = await buildKernels(units, { target, cacheDir: mkdtempSync(join(tmpdir(), 'dequant-build-')) });
      expect(r.cubins.get('dequant_hot')!.length, target).toBeGreaterThan(0);
    }
  }, 300_000);
});
