/**
 * The SwiGLU in the own GEMM's epilogue (passes/fuse-gemm-glu.ts; QLinear's glu in compiler/ops/quant.ts;
 * the kernel in templates/gemm_fp8.cu.njk; the plan in compiler/codegen/plan.ts). The pass: a Flux.2
 * single-block-shaped projection (Q, K, V, then gate and up, through a Split) and an MLP in-projection
 * (gate and up alone) give the same values as the unfused graph, bit for bit, with the SwiGLU gone and the
 * Split's part halved; what it does not fuse. QLinear's glu: its shape and refusals. The plan: the GLU
 * GEMM's arguments and its 32-column, 64-byte-swizzled output map; the kernel refusals and an nvcc build
 * without spills. On an H100 the kernel's samples match the simulation (one bf16 ulp where the fast sigmoid
 * rounds) and Flux.2's output stays within 0.9977 of diffusers' bf16 model (bench/RESULTS.md "Session 22").
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../../compiler/build/index.ts';
import { lateReads } from '../../compiler/codegen/dequant.ts';
import { ownGemm, renderGemm } from '../../compiler/codegen/gemm.ts';
import { deferDequant, kernelPlan, type Launch } from '../../compiler/codegen/plan.ts';
import { renderUnit } from '../../compiler/codegen/render.ts';
import type { DType } from '../../compiler/ir/dtype.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import { makeFuseGemmGlu } from '../../passes/fuse-gemm-glu.ts';
import { makeFuseHorizontal } from '../../passes/fuse-horizontal.ts';
import { planMemory } from '../../passes/plan-memory.ts';
import { runReference } from '../../compiler/exec/reference.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, ints, randomTensor } from '../helpers/graph.ts';

const RULE = 'QLinear -> SwiGLU => QLinear GLU epilogue';
const B = 1, S = 32, K = 128, QKV = 192, F = 192;

type Spec = [string, string[], string[], Record<string, number | string | number[] | string[]>?];
const quantized = (x: string, w: string): Spec[] => [
  ['dc.Quantize', [w], [`${w}q`, `${w}s`], { format: 'fp8', axis: 1 }],
  ['dc.Quantize', [x], [`${x}q`, `${x}s`], { format: 'fp8', axis: -1 }],
];
const qlinear = (x: string, w: string, y: string, bias = ''): Spec => ['dc.QLinear', [`${x}q`, `${x}s`, `${w}q`, `${w}s`, ...(bias ? [bias] : [])], [y], { transB: 1, format: 'fp8', to: 16, accumulate: 'sm90' }];

/** Flux.2's single block in small: y = [Q K V | gate up] of x, Split; SwiGLU(gate, up) and V read on (`sharedSizes`: another Split reads the sizes too). */
function single(extraOutputs: string[] = [], sharedSizes = false): Inferred {
  const inputs: Record<string, [DType, number[]]> = { x: ['float32', [B, S, K]] };
  const constants = { W: randomTensor([QKV + 2 * F, K], 1, 'float32', 0.1), sizes: ints([QKV, 2 * F]), W2: randomTensor([QKV + 2 * F, K], 2, 'float32', 0.1) };
  const nodes: Spec[] = [
    ...quantized('x', 'W'), qlinear('x', 'W', 'y'),
    ['Split', ['y', 'sizes'], ['qkv', 'mlp'], { axis: -1 }],
    ['dc.SwiGLU', ['mlp'], ['h']],
    ...(sharedSizes ? [...quantized('x2', 'W2'), qlinear('x2', 'W2', 'y2'), ['Split', ['y2', 'sizes'], ['qkv2', 'mlp2'], { axis: -1 }] as Spec] : []),
  ];
  if (sharedSizes) inputs.x2 = ['float32', [B, S, K]];
  return buildGraph({ inputs, constants, nodes, outputs: ['qkv', 'h', ...extraOutputs, ...(sharedSizes ? ['mlp2'] : [])] });
}

/** An MLP in-projection: h = SwiGLU(QLinear(x)) (with a bias where `bias`). */
function mlpIn(bias = false): Inferred {
  return buildGraph({
    inputs: { x: ['float32', [B, S, K]] },
    constants: { W: randomTensor([2 * F, K], 3, 'float32', 0.1), ...(bias ? { b: randomTensor([2 * F], 4, 'bfloat16', 0.1) } : {}) },
    nodes: [...quantized('x', 'W'), qlinear('x', 'W', 'y', bias ? 'b' : ''), ['dc.SwiGLU', ['y'], ['h']]],
    outputs: ['h'],
  });
}

const x = () => ({ x: randomTensor([B, S, K], 7, 'float32', 4), x2: randomTensor([B, S, K], 8, 'float32', 4) });

function fuse(g: Inferred, minTiles = 1) {
  const { after, report } = applyPass(makeFuseGemmGlu({ minTiles }), g);
  expectTopologicallySorted(after.graph);
  return { after, fired: report.rewrites[RULE] ?? 0 };
}
const kernelLaunches = (launches: Launch[]) => launches.filter((l): l is Extract<Launch, { kind: 'kernel' }> => l.kind === 'kernel');

describe('fuse-gemm-glu', () => {
  it('takes the SwiGLU of a Split part into the QLinear: the same values bit for bit, the part halved, the shared sizes left to the other Split', () => {
    const g = single([], true);
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    expect(after.graph.nodes.some((n) => n.op === 'SwiGLU')).toBe(false);
    const q = after.graph.nodes.find((n) => n.op === 'QLinear' && n.outputs[0] === 'y')!;
    expect(q.attrs.glu).toEqual([QKV, F]);
    expect(after.graph.types.get('y')).toMatchObject({ shape: [B, S, QKV + F] });
    const split = after.graph.nodes.find((n) => n.op === 'Split' && n.inputs[0] === 'y')!;
    expect(split.outputs).toEqual(['qkv', 'h']);
    expect(after.graph.constants.has('sizes')).toBe(true);  // the second Split still reads it
    const sizes = after.graph.constants.get(split.inputs[1])!.source;
    expect(sizes.kind === 'inline' && sizes.tensor.toNumbers()).toEqual([QKV, F]);
    expectSameResults(g.graph, after.graph, 0, { tolerance: 0, inputs: x() });
  });

  it('takes a SwiGLU of the whole output (the MLP in-projection), bit for bit', () => {
    const g = mlpIn();
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    const q = after.graph.nodes.find((n) => n.op === 'QLinear')!;
    expect([q.attrs.glu, q.outputs]).toEqual([[0, F], ['h']]);
    expectSameResults(g.graph, after.graph, 0, { tolerance: 0, inputs: x() });
  });

  it('leaves a GEMM the own kernel does not take, one with a bias, a window off the tile, and a y read by another node', () => {
    expect(fuse(single(), 10_000).fired).toBe(0);
    expect(fuse(mlpIn(true)).fired).toBe(0);
    // y itself a graph output.
    expect(fuse(buildGraph({
      inputs: { x: ['float32', [B, S, K]] }, constants: { W: randomTensor([2 * F, K], 3, 'float32', 0.1) },
      nodes: [...quantized('x', 'W'), qlinear('x', 'W', 'y'), ['dc.SwiGLU', ['y'], ['h']]], outputs: ['h', 'y'],
    })).fired).toBe(0);
    // The gate's first column not a multiple of 192 (a 96-column Q before it).
    expect(fuse(buildGraph({
      inputs: { x: ['float32', [B, S, K]] }, constants: { W: randomTensor([96 + 2 * F, K], 3, 'float32', 0.1), sizes: ints([96, 2 * F]) },
      nodes: [...quantized('x', 'W'), qlinear('x', 'W', 'y'), ['Split', ['y', 'sizes'], ['q', 'mlp'], { axis: -1 }], ['dc.SwiGLU', ['mlp'], ['h']]], outputs: ['q', 'h'],
    })).fired).toBe(0);
  });

  it('QLinear glu: y narrower by the window\'s width; windows past y or with a residual epilogue refused', () => {
    const bad = (glu: number[], extra: Record<string, string> = {}) => buildGraph({
      inputs: { x: ['float32', [B, S, K]] }, constants: { W: randomTensor([2 * F, K], 1, 'float32', 0.1) },
      nodes: [...quantized('x', 'W'), ['dc.QLinear', ['xq', 'xs', 'Wq', 'Ws'], ['y'], { transB: 1, format: 'fp8', to: 16, accumulate: 'sm90', glu, ...extra }]],
      outputs: ['y'],
    });
    expect(bad([0, F]).graph.types.get('y')).toMatchObject({ dtype: 'bfloat16', shape: [B, S, F] });
    expect(() => bad([96, F])).toThrow(/glu window/);
    expect(() => bad([0, 0])).toThrow(/glu window/);
    expect(() => bad([0, F], { epilogue: 'residual' })).toThrow(/glu window/);
  });

  it('QLinear glu beside an amax window (Flux.2\'s single blocks: V before the window): the amax of y\'s columns as the plain GEMM makes them', () => {
    const q = (attrs: Record<string, number[]>) => buildGraph({
      inputs: { x: ['float32', [B, S, K]] }, constants: { W: randomTensor([QKV + 2 * F, K], 1, 'float32', 0.1) },
      nodes: [...quantized('x', 'W'), ['dc.QLinear', ['xq', 'xs', 'Wq', 'Ws'], ['y', ...(attrs.amax ? ['a'] : [])], { transB: 1, format: 'fp8', to: 16, accumulate: 'sm90', ...attrs }]],
      outputs: attrs.amax ? ['y', 'a'] : ['y'],
    });
    const inputs = { x: x().x };
    const { y, a } = runReference(q({ glu: [QKV, F], amax: [128, 64] }).graph, inputs);
    const { y: plain } = runReference(q({}).graph, inputs);
    expect(y.shape).toEqual([B, S, QKV + F]);
    const want = Array.from({ length: 64 }, (_, c) => Math.max(...Array.from({ length: S }, (_, r) => Math.abs(plain.get(r * (QKV + 2 * F) + 128 + c)))));
    expect(a.toNumbers()).toEqual(want);
  });

  it('fuse-horizontal never pairs a GLU QLinear', () => {
    // Two MLP in-projections of one shape, both fused (the own kernel from one tile). As fuse-horizontal counts their
    // GEMMs (by Y: one 192-wide tile each), at two tiles the smaller alone would go to cuBLASLt and the pair to the
    // own kernel as twins.
    const g = buildGraph({
      inputs: { x: ['float32', [B, S, K]], x2: ['float32', [B, 8, K]] }, constants: { W: randomTensor([2 * F, K], 3, 'float32', 0.1), W2: randomTensor([2 * F, K], 4, 'float32', 0.1) },
      nodes: [...quantized('x', 'W'), qlinear('x', 'W', 'y'), ['dc.SwiGLU', ['y'], ['h']], ...quantized('x2', 'W2'), qlinear('x2', 'W2', 'y2'), ['dc.SwiGLU', ['y2'], ['h2']]],
      outputs: ['h', 'h2'],
    });
    const fused = fuse(g).after;
    expect(fused.graph.nodes.filter((n) => n.attrs.glu).length).toBe(2);
    const { report } = applyPass(makeFuseHorizontal({ gemms: { minTiles: 2 } }), fused);
    expect(report.rewrites['independent twin FP8 GEMMs => GroupedGemm'] ?? 0).toBe(0);
  });

  it('plans the GLU GEMM: Y N - width wide, W in 96-row boxes, Y again last for its 32-column map', () => {
    const g = fuse(single()).after.graph;
    const deferred = deferDequant(g, { minTiles: 1 });
    const launches = kernelLaunches(kernelPlan(g, planMemory(g, lateReads(g, deferred)), deferred, { fastAccum: true, ownGemm: { promote: 0, minTiles: 1 } }).launches);
    const gemm = launches.find((l) => l.kernel.startsWith('gemm8_'))!;
    expect(gemm.args.map((a) => a.value)).toEqual(['xq', 'Wq', 'y', 'y', 'xs', 'Ws', 'y']);
    expect(gemm.maps).toEqual([
      { param: 0, dtype: 'uint8', rows: S, cols: K, rowBytes: K, box: [128, 128] },
      { param: 1, dtype: 'uint8', rows: QKV + 2 * F, cols: K, rowBytes: K, box: [128, 96] },
      { param: 2, dtype: 'bfloat16', rows: S, cols: QKV + F, rowBytes: 2 * (QKV + F), box: [64, 64] },
      { param: 6, dtype: 'bfloat16', rows: S, cols: QKV + F, rowBytes: 2 * (QKV + F), box: [32, 64] },
    ]);
  });

  it('the kernel refuses what its GLU epilogue does not take; the models\' GLU GEMMs build for sm_90a without spills', async () => {
    const sc = { xs: 'float32', ws: 'float32' };
    const base = { kind: 'gemm-fp8' as const, m: 4608, n: 55296, k: 6144, bn: 192, stages: 4, groupM: 8, promote: 0, epilogue: 'scaled' as const, bias: false, schedule: 'pingpong' as const };
    expect(() => renderGemm({ ...base, glu: { lo: 18432 + 96, width: 18432 } })).toThrow(/GLU window/);
    expect(() => renderGemm({ ...base, glu: { lo: 18432, width: 18432 + 48 } })).toThrow(/GLU window/);
    expect(() => renderGemm({ ...base, bias: true, glu: { lo: 18432, width: 18432 } })).toThrow(/GLU epilogue in the ping-pong schedule/);
    expect(() => renderGemm({ ...base, twinM: 64, glu: { lo: 18432, width: 18432 } })).toThrow(/GLU epilogue in the ping-pong schedule/);
    expect(() => renderGemm({ ...base, glu: { lo: 18432, width: 18432 }, amax: { gemms: [{ lo: 18432, hi: 18432 + 64, rows: 4608, keys: 0, offset: 0 }] } })).toThrow(/amax windows before the GLU outputs/);
    expect(() => renderGemm({ ...base, glu: { lo: 0, width: 96 }, amax: { gemms: [{ lo: 128, hi: 256, rows: 4608, keys: 0, offset: 0 }] } })).toThrow(/amax windows before the GLU outputs/);
    const kernels = [
      // Flux.2's single block (V's amax beside the GLU) and its MLP in-projections.
      ownGemm(4608, 55296, 6144, 0, 'bfloat16', sc, 264, undefined, undefined, { gemms: [{ lo: 12288, hi: 18432, rows: 4608, keys: 0, offset: 0 }] }, { lo: 18432, width: 18432 })!.kernel,
      ownGemm(4096, 36864, 6144, 0, 'bfloat16', sc, 264, undefined, undefined, undefined, { lo: 0, width: 18432 })!.kernel,
    ];
    const report = await buildKernels([{ name: 'glu', source: renderUnit(kernels), hot: true }], { target: 'h100', cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const functions = report.units[0].functions;
    for (const k of kernels) expect(functions.some((f) => f.name === k.name), k.name).toBe(true);
    expect(functions.every((f) => f.spillStoreBytes === 0 && f.spillLoadBytes === 0)).toBe(true);
  }, 300_000);
});
