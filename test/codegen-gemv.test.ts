/**
 * The weight-only FP8 GEMV (passes/quantize/policy.ts `oneRowGemms`, dc.WQLinear,
 * compiler/codegen/gemv.ts): which GEMMs take it (full-size Qwen-Image and Flux.2 [dev]: the fused
 * modulation only; the tiny models: none by default, the one-row GEMMs with oneRowMinBytes 0), the
 * op's simulation against a float64 reference of the dequantized product, the tiny models' --verify
 * with the path forced, the kernel's nvcc build for sm_90a and sm_100a without spills, the weights
 * and scales round-trip through weights.bin, and synthetic fills drawing both sections. The kernel's
 * numerics and time on an H100: bench/gpu/gemv_fp8.py (bench/results/fp8-gemv-2026-11-26.md).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { compileModel } from '../compiler/compile.ts';
import { type GemvDescriptor, gemvDescriptor, gemvGeometry, renderGemv } from '../compiler/codegen/gemv.ts';
import { kernelPlan } from '../compiler/codegen/plan.ts';
import { renderUnit } from '../compiler/codegen/render.ts';
import { fullModelPath } from '../compiler/full-models.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { loadConstant } from '../compiler/onnx/constants.ts';
import { quantize } from '../compiler/ops/quant.ts';
import { lookupOp } from '../compiler/ops/registry.ts';
import { decodeE4M3 } from '../compiler/quant/formats.ts';
import { type WeightEntry, describeWeights } from '../compiler/weights-file.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { type PrecisionPolicy, defaultPolicy } from '../passes/quantize/policy.ts';
import { deviceLayout, syntheticFills } from '../runtime/gpu/weights.ts';
import { rng, tinyDir } from './helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'gemv-'));
const optimise = (file: string, policy: PrecisionPolicy, shapes: Record<string, number> = {}) => {
  const q = insertQuantize(policy);
  const graph = runPipeline(inferTypes(specialise(importOnnx(file).graph, shapes)), { passes: pipelineFor(q) }).graph;
  return { graph, decisions: q.decisions };
};
const wqlinears = (g: Graph) => g.nodes.filter((n) => n.domain === 'dc' && n.op === 'WQLinear');
const shapeOf = (g: Graph, v: string) => (g.types.get(v) as unknown as { shape: number[] }).shape;

describe('which GEMMs take the weight-only FP8 path', () => {
  it('full-size Qwen-Image: the fused modulation (121 Linears, 13.6 GB of bf16 -> 6.8 GB e4m3) and nothing else', () => {
    const { graph, decisions } = optimise(fullModelPath('qwen_image'), defaultPolicy('fp8'));
    const only = decisions.filter((d) => d.weightOnly);
    expect(only).toHaveLength(1);
    expect(only[0]).toMatchObject({ quantized: true, shape: [2217984, 3072], transB: true });
    expect(only[0].weights).toHaveLength(121);
    expect(only[0].weights.filter((w) => /img_mod|txt_mod/.test(w))).toHaveLength(120);
    // The timestep embedder's one-row GEMMs (3 MB and 19 MB of bf16) stay in high precision.
    const oneRowKept = decisions.filter((d) => !d.quantized && d.reason.startsWith('one row per sample'));
    expect(oneRowKept.map((d) => d.shape)).toEqual([[3072, 256], [3072, 3072]]);
    const [node] = wqlinears(graph);
    expect(wqlinears(graph)).toHaveLength(1);
    expect(shapeOf(graph, node.inputs[1])).toEqual([2217984, 3072]);
    expect(graph.types.get(node.inputs[1])).toMatchObject({ dtype: 'float8e4m3fn' });
    expect(shapeOf(graph, node.inputs[2])).toEqual([2217984, 1]);
    expect(graph.types.get(node.inputs[0])).toMatchObject({ dtype: 'bfloat16' });
    // e4m3 codes + fp32 scales, against bf16 before.
    expect(2217984 * 3072 + 4 * 2217984).toBeLessThan(0.51 * 2 * 2217984 * 3072);
    // The launch: our kernel, with (x, wq, ws, bias, y).
    const plan = kernelPlan(graph, planMemory(graph));
    const launch = plan.launches.find((l) => l.node === node.outputs[0])!;
    expect(launch).toMatchObject({ kind: 'kernel', block: 256, sharedBytes: 12288 });
    expect(launch.args.map((a) => [a.value, a.where])).toEqual([[node.inputs[0], 'arena'], [node.inputs[1], 'weight'], [node.inputs[2], 'weight'], [node.inputs[3], 'weight'], [node.outputs[0], 'arena']]);
    expect(plan.launches.filter((l) => l.kind === 'gemm' && l.precision === 'high')).toHaveLength(4);
  }, 120_000);

  it('full-size Flux.2 [dev]: the fused modulation (104448 x 6144); the 75 MB timestep/guidance embedders stay bf16', () => {
    const { decisions } = optimise(fullModelPath('flux2_dev'), defaultPolicy('fp8'), { img_tokens: 4096, txt_tokens: 512 });
    const only = decisions.filter((d) => d.weightOnly);
    expect(only.map((d) => d.shape)).toEqual([[104448, 6144]]);
    expect(decisions.filter((d) => !d.quantized && d.reason.startsWith('one row per sample')).map((d) => d.shape)).toEqual([[6144, 256], [6144, 6144], [6144, 256], [6144, 6144]]);
  }, 120_000);

  it('tiny models: none by default (small weights); with oneRowMinBytes 0 every one-row GEMM; "high" and nvfp4 none', () => {
    for (const name of ['flux2', 'qwen_image']) {
      const file = join(tinyDir(name), 'model.onnx');
      expect(optimise(file, defaultPolicy('fp8')).decisions.filter((d) => d.weightOnly)).toHaveLength(0);
      const forced = optimise(file, { ...defaultPolicy('fp8'), oneRowMinBytes: 0 });
      const oneRow = optimise(file, { ...defaultPolicy('fp8'), oneRowGemms: 'high' }).decisions.filter((d) => d.reason.startsWith('one row per sample'));
      expect(oneRow.length).toBeGreaterThanOrEqual(3);
      expect(forced.decisions.filter((d) => d.weightOnly).map((d) => d.node).sort()).toEqual(oneRow.map((d) => d.node).sort());
      expect(wqlinears(forced.graph)).toHaveLength(oneRow.length);
      expect(optimise(file, { ...defaultPolicy('nvfp4'), oneRowMinBytes: 0 }).decisions.filter((d) => d.weightOnly)).toHaveLength(0);
    }
  });

  it('a policy file sets the mode; a bad value fails naming the key', async () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, JSON.stringify({ oneRowGemms: 'fp4' }));
    await expect(compileModel({ model: tinyDir('flux2'), policy: bad, build: false, out: join(tmp, 'bad') })).rejects.toThrow(/"oneRowGemms" to be "fp8-weights" or "high"/);
    const neg = join(tmp, 'neg.json');
    writeFileSync(neg, JSON.stringify({ oneRowMinBytes: -1 }));
    await expect(compileModel({ model: tinyDir('flux2'), policy: neg, build: false, out: join(tmp, 'neg') })).rejects.toThrow(/"oneRowMinBytes"/);
  });
});

describe('WQLinear simulation', () => {
  it.each([[1, true], [3, true], [2, false]] as const)('M = %i, transB %s: the float64 sum of x times the dequantized weight, within float32 rounding', (m, transB) => {
    const r = rng(m * 7 + (transB ? 1 : 0));
    const k = 48, n = 20;
    const x = new Tensor('bfloat16', [m, k], Float32Array.from({ length: m * k }, () => Math.fround(r() * 4 - 2)));
    const wShape = transB ? [n, k] : [k, n];
    const w = new Tensor('float32', wShape, Float32Array.from({ length: n * k }, () => (r() - 0.5) * 0.1 * (1 + 10 * r())));
    const bias = new Tensor('float32', [n], Float32Array.from({ length: n }, () => r() - 0.5));
    const [wq, ws] = quantize(w, 'fp8', transB ? 1 : 0);
    const op = lookupOp({ op: 'WQLinear', domain: 'dc', inputs: [], outputs: [], attrs: {}, name: '' })!;
    const node = { op: 'WQLinear', domain: 'dc', inputs: ['x', 'wq', 'ws', 'b'], outputs: ['y'], attrs: { transB: transB ? 1 : 0, format: 'fp8', to: 1 }, name: '' };
    const [y] = op.exec([x, wq, ws, bias], node) as Tensor[];
    expect(y.shape).toEqual([m, n]);
    const X = x.toFloat32(), Q = wq.toFloat32(), S = ws.toFloat32(), Y = y.toFloat32();
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let ref = bias.get(j), mag = Math.abs(ref);
      for (let kk = 0; kk < k; kk++) {
        const q = transB ? Q[j * k + kk] : Q[kk * n + j];
        const v = X[i * k + kk] * q * S[j];
        ref += v; mag += Math.abs(v);
      }
      expect(Math.abs(Y[i * n + j] - ref)).toBeLessThanOrEqual(mag * 2 ** -22);
    }
    // The codes are e4m3 values, the scales amax/448 per output channel.
    for (let j = 0; j < n; j++) {
      let amax = 0;
      for (let kk = 0; kk < k; kk++) amax = Math.max(amax, Math.abs(w.get(transB ? j * k + kk : kk * n + j)));
      expect(S[j]).toBe(Math.fround(amax / 448));
    }
  });

  it('the optimised tiny graph with the path forced computes what Linear computes on the dequantized weight', () => {
    const file = join(tinyDir('qwen_image'), 'model.onnx');
    const { graph } = optimise(file, { ...defaultPolicy('fp8'), oneRowMinBytes: 0 });
    const node = wqlinears(graph)[0];
    const load = (v: string) => {
      const c = graph.constants.get(v);
      if (c) return loadConstant(c, v);
      const p = graph.nodes.find((x) => x.outputs.includes(v))!;
      const outs = lookupOp(p)!.exec(p.inputs.map((i) => (i ? load(i) : undefined)), p) as Tensor[];
      return outs[p.outputs.indexOf(v)];
    };
    const [wq, ws] = [load(node.inputs[1]), load(node.inputs[2])];
    const k = shapeOf(graph, node.inputs[0]).at(-1)!, n = wq.shape[0];
    const r = rng(5);
    const x = new Tensor('float32', [1, k], Float32Array.from({ length: k }, () => r() * 2 - 1));
    const bias = node.inputs[3] ? load(node.inputs[3]) : undefined;
    const [y] = lookupOp(node)!.exec([x, wq, ws, bias], node) as Tensor[];
    const Q = wq.toFloat32(), S = ws.toFloat32();
    for (let j = 0; j < n; j++) {
      let ref = bias ? bias.get(j) : 0;
      for (let kk = 0; kk < k; kk++) ref += x.get(kk) * Q[j * k + kk] * S[j];
      expect(y.get(j)).toBeCloseTo(ref, 5);
    }
  });
});

describe.each(['flux2', 'qwen_image'])('tiny %s with every one-row GEMM weight-only FP8', (name) => {
  it('--verify within the fp8 bar, the report and the launch plan name the path, the weights round-trip', async () => {
    const policy = join(tmp, `${name}-policy.json`);
    writeFileSync(policy, JSON.stringify({ oneRowMinBytes: 0 }));
    const out = join(tmp, `${name}-fp8w`);
    const s = await compileModel({ model: tinyDir(name), out, verify: tinyDir(name), policy, build: false });
    const base = await compileModel({ model: tinyDir(name), out: join(tmp, `${name}-base`), verify: tinyDir(name), build: false });
    expect(s.verify!.passed).toBe(true);
    expect(s.verify!.cosine).toBeGreaterThanOrEqual(0.995);
    expect(Math.abs(s.verify!.relL2 - base.verify!.relL2)).toBeLessThan(0.01);
    const only = s.gemms.filter((g) => g.weightOnly);
    expect(only.length).toBeGreaterThanOrEqual(3);
    for (const g of only) expect(g.weightRelL2!).toBeLessThan(0.05);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toContain('fp8 weights, activation as is');
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    const gemv = m.launchPlan.filter((l: { kind: string; kernel?: string }) => l.kind === 'kernel' && l.kernel!.startsWith('gemv8_'));
    expect(gemv).toHaveLength(only.length);
    // weights.bin: each GEMV's wq/ws entry holds e4m3 codes and fp32 scales equal to quantizing the source weight.
    const bin = readFileSync(join(out, 'weights.bin'));
    const onnx = importOnnx(join(tinyDir(name), 'model.onnx')).graph;
    for (const l of gemv) {
      const entry = m.weights.tensors.find((t: WeightEntry) => t.name === l.args[1].value) as WeightEntry;
      expect(entry).toMatchObject({ kind: 'fp8', layout: 'nk', scale: l.args[2].value });
      const [n, k] = entry.shape;
      const codes = bin.subarray(entry.sections.codes.offset, entry.sections.codes.offset + n * k);
      const scales = new Float32Array(Uint8Array.from(bin.subarray(entry.sections.scales.offset, entry.sections.scales.offset + 4 * n)).buffer);
      // Rebuild the source [N, K] from the entry's provenance and quantize it again.
      const src = new Float32Array(n * k);
      for (const s of entry.sources!) {
        const w = loadConstant(onnx.constants.get(s.initializer)!, s.initializer).toFloat32();
        const [r0, r1] = s.box[0], [c0, c1] = s.box[1];
        const rows = r1 - r0, cols = c1 - c0;
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) {
          src[(r0 + i) * k + c0 + j] = s.perm[0] === 0 ? w[i * cols + j] : w[j * rows + i];
        }
      }
      const [q, sc] = quantize(new Tensor('float32', [n, k], src), 'fp8', 1);
      expect(Array.from(scales)).toEqual(Array.from(sc.toFloat32()));
      const Q = q.toFloat32();
      for (let i = 0; i < n * k; i++) if (decodeE4M3(codes[i]) !== Q[i]) throw new Error(`code ${i} of ${entry.name}: ${decodeE4M3(codes[i])} != ${Q[i]}`);
    }
  }, 120_000);
});

describe('the rendered kernel', () => {
  const shape = (m: number, n: number, k: number, x = '__nv_bfloat16'): GemvDescriptor => ({ kind: 'gemv-fp8', m, n, k, xType: x, outType: x, biasType: '__nv_bfloat16' });
  const cases = [shape(1, 2217984, 3072), shape(4, 2217984, 3072), shape(1, 104448, 6144), shape(2, 100, 48, 'float'), { ...shape(1, 4096, 16384), biasType: null }];

  it('geometry: 16-byte chunks, at most 12 loads in flight per lane, shared memory for x', () => {
    expect(gemvGeometry(cases[0])).toMatchObject({ chunks: 192, slice: 6, slices: 1, rows: 2, groups: 1108992, grid: 528, sharedBytes: 12288 });
    expect(gemvGeometry(cases[2])).toMatchObject({ chunks: 384, slice: 12, slices: 1, rows: 1 });
    expect(gemvGeometry(cases[4])).toMatchObject({ chunks: 1024, slice: 12, slices: 3, rows: 1 });
    expect(gemvGeometry(cases[3])).toMatchObject({ chunks: 3, slice: 1, rows: 4, grid: 4, sharedBytes: 2 * 512 * 4 });
    expect(() => gemvDescriptor(...fakeNode(5, 3072))).toThrow(/1 to 4 rows of x/);
    expect(() => gemvDescriptor(...fakeNode(1, 40))).toThrow(/K a multiple of 16/);
  });

  it.each(['h100', 'b200'] as const)('builds for %s with nvcc, no spills', async (target) => {
    const kernels = cases.map((d) => renderGemv(d));
    const report = await buildKernels([{ name: `gemv_${target}`, source: renderUnit(kernels), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const functions = report.units[0].functions;
    for (const k of kernels) expect(functions.some((f) => f.name === k.name), k.name).toBe(true);
    expect(functions.every((f) => f.spillStoreBytes === 0 && f.spillLoadBytes === 0)).toBe(true);
  }, 300_000);
});

describe('synthetic weights', () => {
  it('draw the codes and the scales of the full-size GEMV weight', () => {
    const { graph } = optimise(fullModelPath('qwen_image'), defaultPolicy('fp8'));
    const [node] = wqlinears(graph);
    const { tensors } = describeWeights(graph, 'structure only');
    const entry = tensors.find((t) => t.name === node.inputs[1])!;
    expect(entry).toMatchObject({ kind: 'fp8', shape: [2217984, 3072], scale: node.inputs[2], learned: true });
    expect(entry.sources).toHaveLength(121);
    const layout = deviceLayout(tensors, null);
    const fills = syntheticFills(tensors, layout, 42, null, () => undefined).filter((f) => f.entry === entry.name);
    expect(fills.map((f) => [f.section, f.count])).toEqual([['codes', 2217984 * 3072], ['scales', 2217984]]);
    expect(layout.sections.get(entry.name)!.codes.length).toBe(2217984 * 3072);
    expect(layout.sections.get(entry.name)!.scales.length).toBe(4 * 2217984);
  }, 120_000);
});

/** A WQLinear node over x [m, k] and an fp8 weight [64, k], for the descriptor's checks. */
function fakeNode(m: number, k: number): [Graph, Graph['nodes'][number]] {
  const types = new Map<string, unknown>([
    ['x', { kind: 'tensor', dtype: 'bfloat16', shape: [m, k] }], ['wq', { kind: 'tensor', dtype: 'float8e4m3fn', shape: [64, k] }],
    ['ws', { kind: 'tensor', dtype: 'float32', shape: [64, 1] }], ['y', { kind: 'tensor', dtype: 'bfloat16', shape: [m, 64] }],
  ]);
  const node = { op: 'WQLinear', domain: 'dc', inputs: ['x', 'wq', 'ws'], outputs: ['y'], attrs: { transB: 1, format: 'fp8', to: 16 }, name: '' };
  return [{ types } as unknown as Graph, node as Graph['nodes'][number]];
}
