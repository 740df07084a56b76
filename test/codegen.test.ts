/**
 * Code generation on the CPU machine (nvcc present, no GPU): every element-wise kernel of the tiny
 * Flux.2 and Qwen-Image transformers (fp8 pipeline) renders and builds for both targets with no
 * register spills, identical descriptors render to one kernel, and rendering is pure. The kernels'
 * numerics are checked on the GPU (test/gpu/cases.ts).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { EW_OPS, ROW_TUNING, elementwiseDescriptor } from '../compiler/codegen/elementwise.ts';
import { type RenderedKernel, renderElementwise, renderUnit, rowCtasPerSm } from '../compiler/codegen/render.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { loadTimeNodes } from '../compiler/launches.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { type NodeSpec, buildGraph } from './helpers/graph.ts';
import { Tensor } from '../compiler/ir/tensor.ts';

function kernelsOf(name: string) {
  const graph = runPipeline(inferTypes(importOnnx(join(tinyDir(name), 'model.onnx')).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
  const loadTime = loadTimeNodes(graph);
  return graph.nodes.filter((n, i) => !loadTime.has(i) && (n.op === 'FusedKernel' || (EW_OPS.has(n.op) && n.op !== 'Cast')))
    .map((n) => renderElementwise(elementwiseDescriptor(graph, n)));
}

/** The one fused row kernel the fp8 pipeline makes of `spec`: its node's ops, descriptor and rendering. */
function fusedRowKernel(spec: Parameters<typeof buildGraph>[0]) {
  const graph = runPipeline(buildGraph(spec), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
  const node = graph.nodes.find((n) => n.op === 'FusedKernel')!;
  const d = elementwiseDescriptor(graph, node);
  return { ops: node.attrs.ops, d, k: renderElementwise(d) };
}

/** Spilled bytes (stored, loaded) of kernel `k` built alone for sm_90a with a fresh cache. */
async function spillsOf(k: RenderedKernel): Promise<[number, number]> {
  const report = await buildKernels([{ name: 'unit', source: renderUnit([k]), hot: true }], { target: 'h100', cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
  const f = report.units[0].functions.find((fn) => fn.name === k.name)!;
  return [f.spillStoreBytes, f.spillLoadBytes];
}

describe('element-wise codegen', () => {
  const kernels = [...kernelsOf('flux2'), ...kernelsOf('qwen_image')];

  it('renders purely: the same descriptor gives the same source and name', () => {
    const again = [...kernelsOf('flux2'), ...kernelsOf('qwen_image')];
    expect(again.map((k) => k.name)).toEqual(kernels.map((k) => k.name));
    expect(again.map((k) => k.source)).toEqual(kernels.map((k) => k.source));
    expect(new Set(kernels.map((k) => k.name)).size).toBeLessThan(kernels.length); // repeated blocks share kernels
  });

  it('a fused Concat (Flux.2 single blocks) reads each part where it lies: attention output and the SwiGLU halves, no concatenated buffer', () => {
    const graph = runPipeline(inferTypes(importOnnx(join(tinyDir('flux2'), 'model.onnx')).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
    const fused = graph.nodes.filter((n) => n.op === 'FusedKernel' && (n.attrs.ops as string[]).join('+') === 'SwiGLU+Concat+Quantize');
    expect(fused.length).toBeGreaterThan(0);
    for (const n of fused) {
      const d = elementwiseDescriptor(graph, n);
      expect(d.mode).toBe('row');
      expect(d.program.map((i) => i.op)).toEqual(['Concat', 'Quantize']);
      // The parts tile the row: [0, attn width) read directly, the rest as gate/up halves of the MLP input.
      const parts = d.program[0].args.map((a) => d.inputs[Number(a.slice(2))]);
      expect(parts.map((p) => [p.part!.start, p.part!.width, !!p.swiglu])).toEqual([[0, parts[0].part!.width, false], [parts[0].part!.width, d.cols - parts[0].part!.width, true]]);
      expect(d.inputs.map((i) => i.name).sort()).toEqual([...n.inputs].sort());
      expect(d.outputs.map((o) => o.type)).toEqual(['fp8e4m3', 'float']);
    }
  });

  it('per-token fp8 Quantize row kernels divide by no scale per element and round once, in the store', () => {
    const quantizing = kernels.filter((k) => k.source.includes('unsigned it = 0;') && k.source.includes('__nv_fp8_e4m3* __restrict__ out'));
    expect(quantizing.length).toBeGreaterThan(0);
    for (const k of quantizing) {
      expect(k.source, k.name).toMatch(/const auto qd_\d+ = dc_qprep\(s_\d+\);/); // one reciprocal per row
      expect(k.source, k.name).toContain('dc_qmul(');
      expect(k.source, k.name).not.toMatch(/\/ s_\d+\)/); // no per-element division
      expect(k.source, k.name).toMatch(/dc_amax\(am\d+, /);
      // The product x · r is stored unrounded (the e4m3 store rounds it: paired for 16-byte vectors),
      // not rounded and converted again.
      expect(k.source, k.name).toMatch(k.source.includes('dc_load8') ? /dc_store8q<T>\(out0/ : /dc_store<T>\(out0, row \* \d+LL \+ c, v\d+\[i\]\)/);
      expect(k.source, k.name).not.toContain('dc_round_e4m3(dc_qmul(');
    }
    // A row of 16-byte vectors (Flux.2's widths; the tiny fixtures' rows are narrower).
    const wide = renderElementwise({
      kind: 'elementwise', mode: 'row', rows: 4, cols: 6144, compute: 'float', threads: 256, row: ROW_TUNING, results: ['t0', 't0_1'],
      inputs: [{ name: 'x', type: 'bf16', colStride: 1, rowDims: [{ size: 4, stride: 6144 }], vector: true }],
      outputs: [{ name: 'q', type: 'fp8e4m3', perRow: false }, { name: 's', type: 'float', perRow: true }],
      program: [{ op: 'Quantize', out: 't0', args: ['in0'], attrs: { format: 'fp8', axis: -1 } }],
    });
    expect(wide.source).toContain('dc_store8q<T>(out0, row * 6144LL + cb, &v0[j * 8]);');
    expect(wide.source).not.toMatch(/dc_round_e4m3|\/ s_0\)/);
  });

  it.each(['h100', 'b200'] as const)('builds for %s with nvcc, no spills, every kernel present', async (target) => {
    // Hot kernels in one unit that must not spill; trigonometry kernels (see RenderedKernel.hot) apart.
    const hot = kernels.filter((k) => k.hot), cold = kernels.filter((k) => !k.hot);
    expect(hot.length).toBeGreaterThan(cold.length);
    const report = await buildKernels([
      { name: `hot_${target}`, source: renderUnit(hot), hot: true },
      { name: `cold_${target}`, source: renderUnit(cold), hot: false },
    ], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const hotFunctions = report.units.find((u) => u.name === `hot_${target}`)!.functions;
    expect(hotFunctions.every((f) => f.spillStoreBytes === 0 && f.spillLoadBytes === 0)).toBe(true);
    const functions = new Set(report.units.flatMap((u) => u.functions.map((f) => f.name)));
    for (const k of kernels) expect(functions.has(k.name), k.name).toBe(true);
    expect(report.cubins.get(`hot_${target}`)!.length).toBeGreaterThan(1000);
  });

  // A norm weight of constant ones (Flux.2's LayerNorm weight is Expand(1.0, [6144])) is not read:
  // no kernel input, no multiply; any other weight is (x·1 = x, so the values are the same).
  it.each([['Expand(1.0)', true], ['a constant of ones', true], ['a constant with one 2', false]] as const)('a LayerNorm weight of %s is folded: %s', (kind, folded) => {
    const n = 64;
    const ones = Array.from({ length: n }, (_, i) => (kind === 'a constant with one 2' && i === 5 ? 2 : 1));
    const g = buildGraph({
      inputs: { x: ['bfloat16', [8, n]] },
      constants: kind === 'Expand(1.0)' ? { one: Tensor.fromNumbers('bfloat16', [1], [1]), shape: Tensor.fromNumbers('int64', [1], [n]) } : { w: Tensor.fromNumbers('bfloat16', [n], ones) },
      nodes: [...(kind === 'Expand(1.0)' ? [['Expand', ['one', 'shape'], ['w']] as NodeSpec] : []), ['LayerNormalization', ['x', 'w'], ['y'], { axis: -1, epsilon: 1e-6 }], ['dc.Quantize', ['y'], ['q', 's'], { format: 'fp8', axis: -1 }]],
      outputs: ['q', 's'],
    });
    const graph = runPipeline(g, { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
    const node = graph.nodes.find((m) => m.op === 'FusedKernel')!;
    expect(node.attrs.ops).toEqual(['LayerNormalization', 'Quantize']);
    const d = elementwiseDescriptor(graph, node);
    const ln = d.program.find((i) => i.op === 'LayerNormalization')!;
    expect(d.inputs.map((i) => i.name)).toEqual(folded ? [node.inputs[0]] : [node.inputs[0], node.inputs[1]]);
    expect(ln.args[1]).toBe(folded ? '' : 'in1');
    expect(renderElementwise(d).source.includes(' * x1[i]') || renderElementwise(d).source.includes('dc_pk<T>(in1')).toBe(!folded);
  });

  // Qwen-Image's LayerNorm+Modulate+Quantize at its CFG batch: the shift and scale are one row a batch. Staged in the
  // ring with every row, they were two thirds of its copies (compiler/codegen/render.ts runRows).
  it('row inputs that change once a run of >= 1024 rows are held in registers and read again per run, not staged row by row', async () => {
    const rendered = (rows: number) => {
      const g = buildGraph({
        inputs: { x: ['bfloat16', [2, rows, 512]], scale: ['bfloat16', [2, 1, 512]], shift: ['bfloat16', [2, 1, 512]] },
        nodes: [['LayerNormalization', ['x'], ['n'], { axis: -1, epsilon: 1e-6 }], ['dc.Modulate', ['n', 'scale', 'shift'], ['m']], ['dc.Quantize', ['m'], ['q', 's'], { format: 'fp8', axis: -1 }]],
        outputs: ['q', 's'],
      });
      const graph = runPipeline(g, { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
      const node = graph.nodes.find((n) => n.op === 'FusedKernel')!;
      expect(node.attrs.ops).toEqual(['LayerNormalization', 'Modulate', 'Quantize']);
      return renderElementwise(elementwiseDescriptor(graph, node));
    };
    const long = rendered(2048), short = rendered(256);
    // Runs of 2048 rows: x alone in the ring (one 1 KB row a stage), shift and scale once a run.
    expect(long.source.match(/once a run of 2048 rows/g)).toHaveLength(2);
    expect(long.source).toMatch(/run_ = row \/ 2048LL/);
    // Runs of 256 (under a persistent grid's CTAs): all three staged, three 1 KB rows a stage.
    expect(short.source).not.toMatch(/once a run/);
    expect(long.sharedBytes * 3).toBe(short.sharedBytes);
    expect(await spillsOf(long)).toEqual([0, 0]);
  });

  // Regression, was a bug (render.ts rowCtasPerSm): the Qwen2.5-VL text encoder's RMSNorm+Quantize
  // over 3584 columns (448 vectors: no 16-byte geometry, 1024 threads x 4 columns) was given 2 CTAs
  // per SM, so ptxas had 32 registers and spilled, and the full-size pipeline failed to build.
  it('a 3584-wide RMSNorm+Quantize row kernel gets one 1024-thread CTA per SM and builds without spills', async () => {
    const { ops, d, k } = fusedRowKernel({
      inputs: { x: ['bfloat16', [290, 3584]], w: ['bfloat16', [3584]] },
      nodes: [['RMSNormalization', ['x', 'w'], ['y'], { axis: -1, epsilon: 1e-6 }], ['dc.Quantize', ['y'], ['q', 's'], { format: 'fp8', axis: -1 }]],
      outputs: ['q', 's'],
    });
    expect(ops).toEqual(['RMSNormalization', 'Quantize']);
    expect(k.block).toBe(1024);
    expect(rowCtasPerSm(d, 1024, 4)).toBe(1);
    expect(await spillsOf(k)).toEqual([0, 0]);
  });

  // Regression (render.ts rowCtasPerSm): a Concat's parts were not counted as the row they make, so Flux.2's single
  // blocks' Concat+Quantize [4608, 6144 + 18432] (768 threads, 32 values each) got 2 CTAs an SM, 40 registers, and
  // spilled 36 bytes; at one it is 128-129 µs against 134-139 (H100 80GB HBM3, bench/RESULTS.md "Session 22" G3).
  it('a Concat+Quantize row kernel counts its parts as a row array: Flux.2\'s 24576-wide one at one CTA an SM, no spills', async () => {
    const { ops, d, k } = fusedRowKernel({
      inputs: { a: ['bfloat16', [64, 6144]], h: ['bfloat16', [64, 18432]] },
      nodes: [['Concat', ['a', 'h'], ['c'], { axis: -1 }], ['dc.Quantize', ['c'], ['q', 's'], { format: 'fp8', axis: -1 }]],
      outputs: ['q', 's'],
    });
    expect(ops).toEqual(['Concat', 'Quantize']);
    expect([k.block, k.grid]).toEqual([768, 64]);
    expect(rowCtasPerSm(d, 768, 32)).toBe(1);
    expect(await spillsOf(k)).toEqual([0, 0]);
  });
});
