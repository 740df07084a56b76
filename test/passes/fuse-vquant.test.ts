/**
 * V's 8-bit quantization (FP8 P·V's e4m3, the integer P·V's s8) in the V projection's GEMM and the attention pack
 * (passes/fuse-vquant.ts; QLinear's amax output in compiler/ops/quant.ts, AttentionPack vquant=1 in compiler/ops/packed-attention.ts; the
 * kernels in templates/gemm_fp8.cu.njk and templates/attention_pack.cu.njk; the plan in
 * compiler/codegen/plan.ts). The pass: a two-stream attention (text and image QKV GEMMs, a key mask that
 * drops some text keys, whose V rows are made 50 times larger) gives the same Vt8, Vs and attention
 * output, bit for bit, without AttentionQuantizeV; what it does not fuse. The plan: each amax output
 * zeroed by a launch before its GEMM, the GEMM's amax and mask arguments, the pack's. The kernels: nvcc
 * builds without spills. On an H100 the models' outputs are the unfused build's bit for bit
 * (bench/RESULTS.md "Session 21").
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../../compiler/build/index.ts';
import { packDescriptor, renderPack } from '../../compiler/codegen/attention.ts';
import { lateReads } from '../../compiler/codegen/dequant.ts';
import { ownGemm, renderGemm } from '../../compiler/codegen/gemm.ts';
import { deferDequant, kernelPlan, type Launch } from '../../compiler/codegen/plan.ts';
import { renderUnit } from '../../compiler/codegen/render.ts';
import type { DType } from '../../compiler/ir/dtype.ts';
import type { Graph } from '../../compiler/ir/graph.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { makeFuseHorizontal } from '../../passes/fuse-horizontal.ts';
import { makeFuseVQuant } from '../../passes/fuse-vquant.ts';
import { runPipeline } from '../../passes/pipeline.ts';
import { planMemory } from '../../passes/plan-memory.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, ints, randomTensor } from '../helpers/graph.ts';

const RULE = 'V projection amax + AttentionPack + AttentionQuantizeV => QLinear amax, AttentionPack vquant';
const B = 2, K = 128, H = 2, D = 64, N = 3 * H * D, TEXT = 16, IMAGE = 32, KEYS = TEXT + IMAGE;
/** Text keys the mask drops, by batch. */
const DROPPED = [[12, 13, 14, 15], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]];

type Spec = [string, string[], string[], Record<string, number | string | number[] | string[]>?];
/** A stream's QKV projection (a bf16 bias, the own kernel's accumulation), split and viewed as [B, S, H, D]. */
const stream = (s: string): Spec[] => [
  ['dc.Quantize', [`W_${s}`], [`wq_${s}`, `ws_${s}`], { format: 'fp8', axis: 1 }],
  ['dc.Quantize', [`x_${s}`], [`xq_${s}`, `xs_${s}`], { format: 'fp8', axis: -1 }],
  ['dc.QLinear', [`xq_${s}`, `xs_${s}`, `wq_${s}`, `ws_${s}`, `b_${s}`], [`y_${s}`], { transB: 1, format: 'fp8', to: 16, accumulate: 'sm90' }],
  ['Split', [`y_${s}`, 'sizes'], [`yq_${s}`, `yk_${s}`, `yv_${s}`], { axis: -1 }],
  ...(['q', 'k', 'v'] as const).map((r): Spec => ['Reshape', [`y${r}_${s}`, `shape_${s}`], [`${r}_${s}`]]),
];
/** The lowered 8-bit attention (pack, V quantization, P·V in e4m3, or on integers with recipe 'int8') over the text then the image stream, `mask` its key mask or none. */
function graph(mask = true, extraOutputs: string[] = [], recipe: 'fp8' | 'int8' = 'fp8'): Inferred {
  const inputs: Record<string, [DType, number[]]> = { x_t: ['float32', [B, TEXT, K]], x_i: ['float32', [B, IMAGE, K]], ...(mask ? { mask: ['float32', [B, 1, 1, KEYS]] as [DType, number[]] } : {}) };
  const constants = {
    W_t: randomTensor([N, K], 1, 'float32', 0.1), W_i: randomTensor([N, K], 2, 'float32', 0.1), b_t: randomTensor([N], 3, 'bfloat16', 0.1), b_i: randomTensor([N], 4, 'bfloat16', 0.1),
    sizes: ints([H * D, H * D, H * D]), shape_t: ints([B, TEXT, H, D]), shape_i: ints([B, IMAGE, H, D]),
  };
  const none = ['', '', '', ''];
  const nodes: Spec[] = [
    ...stream('t'), ...stream('i'),
    ['dc.AttentionPack', ['', 'q_t', 'k_t', 'v_t', ...none, 'q_i', 'k_i', 'v_i', ...none], ['Qp', 'Kp', 'Vt', 'Qs', 'Ks'], { segments: 2, layouts: ['bshd', 'bshd', 'bshd'], normEps: 1e-6, ropeStyle: 'interleaved', qk: recipe }],
    ['dc.AttentionQuantizeV', ['Vt', ...(mask ? ['mask'] : [])], ['Vt8', 'Vs'], { seqKv: KEYS, pv: recipe }],
    ['dc.PackedAttention', [mask ? 'mask' : '', 'Qp', 'Kp', 'Vt8', 'Qs', 'Ks', 'Vs'], ['out'], { seqQ: KEYS, seqKv: KEYS, headDim: D, qk: recipe, pv: recipe, outLayout: 'bshd', to: 16 }],
  ];
  return buildGraph({ inputs, constants, nodes, outputs: ['out', ...extraOutputs] });
}

/** Seeded inputs; the text rows whose keys the mask drops 50 times larger, so that counting them would move V's scales. */
function inputs(mask = true): Record<string, Tensor> {
  const x_t = randomTensor([B, TEXT, K], 7), x_i = randomTensor([B, IMAGE, K], 8);
  const m = Tensor.zeros('float32', [B, 1, 1, KEYS]);
  DROPPED.forEach((keys, b) => keys.forEach((t) => {
    m.set(b * KEYS + t, -Infinity);
    for (let k = 0; k < K; k++) x_t.set((b * TEXT + t) * K + k, x_t.get((b * TEXT + t) * K + k) * 50);
  }));
  return { x_t, x_i, ...(mask ? { mask: m } : {}) };
}

function fuse(g: Inferred, minTiles = 1) {
  const { after, report } = applyPass(makeFuseVQuant({ minTiles }), g);
  expectTopologicallySorted(after.graph);
  return { after, fired: report.rewrites[RULE] ?? 0 };
}

/** The plan of `g` with the own kernel from one tile (fast accumulation). */
function plan(g: Graph) {
  const deferred = deferDequant(g, { minTiles: 1 });
  return kernelPlan(g, planMemory(g, lateReads(g, deferred)), deferred, { fastAccum: true, ownGemm: { promote: 0, minTiles: 1 } });
}
const kernelLaunches = (launches: Launch[]) => launches.filter((l): l is Extract<Launch, { kind: 'kernel' }> => l.kind === 'kernel');

describe('fuse-vquant', () => {
  it('moves the V quantization into the QKV GEMMs and the pack: Vt8, Vs and the attention bit for bit, the dropped keys left out', () => {
    const g = graph(true, ['Vt8', 'Vs']);
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    expect(after.graph.nodes.some((n) => n.op === 'AttentionQuantizeV')).toBe(false);
    expectSameResults(g.graph, after.graph, 0, { tolerance: 0, inputs: inputs() });
    // The GEMMs: V's columns (the last third), the mask over the text keys 0..15 and the image keys 16..47.
    const [t, i] = ['y_t', 'y_i'].map((y) => after.graph.nodes.find((n) => n.outputs[0] === y)!);
    expect([t.attrs.amax, t.attrs.maskOffset, t.attrs.maskKeys, t.attrs.seqKv, t.inputs[7], t.outputs[1]]).toEqual([[2 * H * D, H * D], 0, KEYS, KEYS, 'mask', 'y_t/vamax']);
    expect([i.attrs.amax, i.attrs.maskOffset]).toEqual([[2 * H * D, H * D], TEXT]);
    const pack = after.graph.nodes.find((n) => n.op === 'AttentionPack')!;
    expect([pack.attrs.vquant, pack.inputs[0], pack.inputs.slice(-2), pack.outputs]).toEqual([1, 'mask', ['y_t/vamax', 'y_i/vamax'], ['Qp', 'Kp', 'Vt8', 'Qs', 'Ks', 'Vs']]);
  });

  it("the integer P·V's s8 V the same way (qk='int8', pv='int8'): the pack takes pv='int8', Vt8, Vs and the attention bit for bit; a pack whose recipe is not its V's is refused", () => {
    for (const mask of [false, true]) {
      const u = graph(mask, ['Vt8', 'Vs'], 'int8'), f = fuse(u);
      expect(f.fired).toBe(1);
      expectSameResults(u.graph, f.after.graph, 0, { tolerance: 0, inputs: inputs(mask) });
    }
    const g = graph(true, ['Vt8', 'Vs'], 'int8');
    const { after } = fuse(g);
    expect(after.graph.nodes.some((n) => n.op === 'AttentionQuantizeV')).toBe(false);
    const pack = after.graph.nodes.find((n) => n.op === 'AttentionPack')!;
    expect([pack.attrs.qk, pack.attrs.vquant, pack.attrs.pv, after.graph.types.get('Vt8')?.dtype]).toEqual(['int8', 1, 'int8', 'int8']);
    // A fused pack whose recipe is not its V's code is refused.
    expect(() => buildGraph({
      inputs: { x: ['float32', [B, KEYS, H, D]], a: ['float32', [B, H * D]] }, constants: {},
      nodes: [['dc.AttentionPack', ['', 'x', 'x', 'x', '', '', '', '', 'a'], ['Qp', 'Kp', 'Vt8', 'Qs', 'Ks', 'Vs'], { segments: 1, layouts: ['bshd', 'bshd', 'bshd'], qk: 'fp8', vquant: 1, pv: 'int8' }]],
      outputs: ['Vt8'],
    })).toThrow(/AttentionPack node #0: expected vquant=1 with qk='fp8' \(pv='fp8'\) or qk='int8' \(pv='int8'\), found qk='fp8', pv='int8'/);
    // pv names the code of the V the pack writes: without vquant it writes none.
    expect(() => buildGraph({
      inputs: { x: ['float32', [B, KEYS, H, D]] }, constants: {},
      nodes: [['dc.AttentionPack', ['', 'x', 'x', 'x', '', '', '', ''], ['Qp', 'Kp', 'Vt', 'Qs', 'Ks'], { segments: 1, layouts: ['bshd', 'bshd', 'bshd'], qk: 'int8', pv: 'int8' }]],
      outputs: ['Vt'],
    })).toThrow(/AttentionPack node #0: expected pv only with vquant=1 \(the V it codes\), found pv='int8', vquant=0/);
  });

  it('fuses both GEMMs of a dc.GroupedGemm (fuse-horizontal\'s pair, neither taken alone), bit for bit; one zero launch, the twin\'s amax and mask after its scales', () => {
    const g = graph(true, ['Vt8', 'Vs']);
    // Four tiles the least the own kernel takes: each GEMM alone has two, the pair four.
    const r = runPipeline(g, { passes: [makeFuseHorizontal({ gemms: { minTiles: 4 } }), makeFuseVQuant({ minTiles: 4 })], maxRounds: 1 });
    expect(r.reports.map((x) => x.rewrites[RULE] ?? x.rewrites['independent twin FP8 GEMMs => GroupedGemm'])).toEqual([1, 1]);
    expectTopologicallySorted(r.graph);
    expectSameResults(g.graph, r.graph, 0, { tolerance: 0, inputs: inputs() });
    const group = r.graph.nodes.find((n) => n.op === 'GroupedGemm')!;
    expect(group.body!.nodes.map((q) => [q.attrs.amax, q.attrs.maskOffset])).toEqual([[[2 * H * D, H * D], 0], [[2 * H * D, H * D], TEXT]]);
    expect(group.outputs.slice(-2)).toEqual(['y_t/vamax', 'y_i/vamax']);
    const deferred = deferDequant(r.graph, { minTiles: 4 });
    const launches = kernelLaunches(kernelPlan(r.graph, planMemory(r.graph, lateReads(r.graph, deferred)), deferred, { fastAccum: true, ownGemm: { promote: 0, minTiles: 4 } }).launches);
    const at = launches.findIndex((l) => l.kernel.startsWith('gemm8_'));
    expect(launches[at - 1].kernel).toMatch(/^zero_/);
    expect(launches[at - 1].args.map((a) => a.value).sort()).toEqual(['y_i/vamax', 'y_t/vamax']);
    // The larger GEMM (the image stream) first, then its twin: X, W, Y, Y, xs, ws, bias, amax, mask each.
    expect(launches[at].args.map((a) => a.value)).toEqual(['i', 't'].flatMap((s) => [`xq_${s}`, `wq_${s}`, `y_${s}`, `y_${s}`, `xs_${s}`, `ws_${s}`, `b_${s}`, `y_${s}/vamax`, 'mask']));
  });

  it('the amax counts every row without a mask, and the dropped rows do count in the unfused V then too', () => {
    const g = graph(false, ['Vt8', 'Vs']);
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    expectSameResults(g.graph, after.graph, 0, { tolerance: 0, inputs: inputs(false) });
    expect(after.graph.nodes.filter((n) => n.op === 'QLinear').every((q) => q.attrs.maskKeys === undefined && q.inputs.length === 5)).toBe(true);
  });

  it('leaves the V quantization where the own kernel does not run the GEMM, or the GEMM is not V alone', () => {
    expect(fuse(graph(), 10_000).fired).toBe(0);
    // Vt read by a second node.
    const g = graph(true, ['Vt']);
    expect(fuse(g).fired).toBe(0);
  });

  it('the QLinear amax output: checked windows and masks', () => {
    const bad = (attrs: Record<string, number | number[]>) => buildGraph({
      inputs: { x: ['float32', [B, TEXT, K]], mask: ['float32', [B, 1, 1, KEYS]] }, constants: { W: randomTensor([N, K], 1, 'float32', 0.1) },
      nodes: [['dc.Quantize', ['W'], ['wq', 'ws'], { format: 'fp8', axis: 1 }], ['dc.Quantize', ['x'], ['q', 'qs'], { format: 'fp8', axis: -1 }],
        ['dc.QLinear', ['q', 'qs', 'wq', 'ws', '', '', '', 'mask'], ['y', 'a'], { transB: 1, format: 'fp8', to: 16, accumulate: 'sm90', ...attrs }]],
      outputs: ['a'],
    });
    expect(() => bad({ amax: [N - 64, 128] })).toThrow(/amax window/);
    expect(() => bad({ amax: [0, 64], maskKeys: 4, seqKv: KEYS, maskOffset: KEYS - 8 })).toThrow(/key mask/);
    expect(bad({ amax: [0, 64], maskKeys: 4, seqKv: KEYS, maskOffset: 0 }).graph.types.get('a')).toMatchObject({ dtype: 'float32', shape: [B, 64] });
  });

  it('plans a zero launch before each amax GEMM, the amax and mask after the GEMM\'s scales, the pack reading both', () => {
    const g = fuse(graph()).after.graph;
    const launches = kernelLaunches(plan(g).launches);
    for (const y of ['y_t', 'y_i']) {
      const at = launches.findIndex((l) => l.kernel.startsWith('gemm8_') && l.node === y);
      expect(launches[at - 1]).toMatchObject({ node: y, args: [{ value: `${y}/vamax` }] });
      expect(launches[at - 1].kernel).toMatch(/^zero_/);
      const s = y.slice(-1);
      expect(launches[at].args.map((a) => a.value)).toEqual([`xq_${s}`, `wq_${s}`, y, y, `xs_${s}`, `ws_${s}`, `b_${s}`, `${y}/vamax`, 'mask']);
    }
    const pack = launches.find((l) => l.kernel.startsWith('attnpack_'))!;
    expect(pack.args.map((a) => a.value).slice(-9)).toEqual(['y_t/vamax', 'y_i/vamax', 'mask', 'Qp', 'Kp', 'Vt8', 'Qs', 'Ks', 'Vs']);
  });

  it('refuses an amax window the epilogue cannot take (not whole 64-column chunks, rows a batch not a multiple of 16)', () => {
    const sc = { xs: 'float32', ws: 'float32' };
    const window = (lo: number, hi: number, rows: number) => ({ gemms: [{ lo, hi, rows, keys: 0, offset: 0 }] });
    expect(() => ownGemm(4096, 18432, 6144, 0, 'bfloat16', sc, 264, undefined, undefined, window(12288 + 32, 18432, 4096))).toThrow(/amax window/);
    expect(() => ownGemm(4096, 18432, 6144, 0, 'bfloat16', sc, 264, undefined, undefined, window(12288, 18432, 40))).toThrow(/amax window/);
    expect(() => renderGemm({ kind: 'gemm-fp8', m: 4096, n: 18432, k: 6144, bn: 192, stages: 4, groupM: 8, promote: 0, epilogue: 'unscaled', bias: false, schedule: 'pingpong', amax: window(12288, 18432, 4096) })).toThrow(/amax epilogue in the ping-pong schedule with scales/);
  });

  it('builds for sm_90a without spills: the models\' amax GEMMs (Qwen-Image\'s with its masked 64-row twin) and a masked vquant pack, e4m3 and s8', async () => {
    const sc = { xs: 'float32', ws: 'float32' };
    const mask = { type: 'float', bool: false, offset: 0, b: 4128, t: 1 };
    const kernels = [
      ownGemm(4608, 55296, 6144, 0, 'bfloat16', sc, 264, undefined, undefined, { gemms: [{ lo: 12288, hi: 18432, rows: 4608, keys: 0, offset: 0 }] })!.kernel,
      ownGemm(8192, 9216, 3072, 0, 'bfloat16', { ...sc, bias: 'bfloat16' }, 264, 64, undefined, { gemms: [{ lo: 6144, hi: 9216, rows: 4096, keys: 0, offset: 32 }, { lo: 6144, hi: 9216, rows: 32, keys: 32, offset: 0 }], mask })!.kernel,
    ];
    const packs = (['fp8', 'int8'] as const).map((recipe) => {
      const g = fuse(graph(true, [], recipe)).after.graph;
      const { args: _args, ...pack } = renderPack(packDescriptor(g, g.nodes.find((n) => n.op === 'AttentionPack')!));
      return pack;
    });
    expect(packs[1].source).toMatch(/dc_s8_scale\(__uint_as_float\(vAmaxBits\)\)[\s\S]*dca_vt8_chunk<true>\(x0/);
    expect(packs[0].source).toMatch(/dc_fp8_scale\(__uint_as_float\(vAmaxBits\)\)[\s\S]*dca_vt8_chunk<false>\(x0/);
    const report = await buildKernels([{ name: 'vquant', source: renderUnit([...kernels, ...packs]), hot: true }], { target: 'h100', cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const functions = report.units[0].functions;
    for (const k of [...kernels, ...packs]) expect(functions.some((f) => f.name === k.name), k.name).toBe(true);
    expect(functions.every((f) => f.spillStoreBytes === 0 && f.spillLoadBytes === 0)).toBe(true);
  }, 300_000);
});
