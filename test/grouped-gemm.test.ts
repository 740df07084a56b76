/**
 * Twin FP8 GEMMs as one launch of the own GEMM (dc.GroupedGemm: passes/fuse-horizontal.ts with
 * options.gemms; compiler/codegen/gemm.ts twinM; the plan's route in compiler/codegen/plan.ts).
 * The pass: which independent QLinears it groups (the own kernel takes the pair, and would not take
 * the smaller alone) and which it leaves apart (one feeding the other, another N, the smaller big
 * enough alone, no option), with the reference executor's values unchanged and the FLOPs counted
 * once. Which compiles group (horizontalFor): the own kernel with fast accumulation and its scales in
 * its epilogue on h100; not with fp32 accumulation, the scales in the readers, cuBLASLt or b200.
 * The descriptor: what it refuses, the tiles it counts, the twin's parameters and tile order.
 * The plan: one launch with the GEMM of more rows first and each GEMM's X, W, Y maps, under the
 * node's values where a later pass renamed them; each GEMM its own cuBLASLt launch without the own
 * kernel. Bit-exactness of the twin's outputs on an H100: bench/gpu/gemm-own.ts (variants `t64`,
 * `t512`; bench/RESULTS.md "Session 16").
 */
import { describe, expect, it } from 'vitest';
import { type GemmDescriptor, ownGemm, ownGemmTakes, renderGemm } from '../compiler/codegen/gemm.ts';
import { lateReads } from '../compiler/codegen/dequant.ts';
import { deferDequant, kernelPlan, type Launch } from '../compiler/codegen/plan.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import type { Inferred } from '../compiler/ir/infer.ts';
import { countFlops } from '../compiler/stats.ts';
import { horizontalFor, ownGemmFor } from '../compiler/compile.ts';
import { OWN_GEMM_MIN_TILES } from '../compiler/codegen/gemm.ts';
import { type HorizontalOptions, makeFuseHorizontal } from '../passes/fuse-horizontal.ts';
import { defaultPolicy, type PrecisionPolicy } from '../passes/quantize/policy.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { removeNoops } from '../passes/simplify/remove-noops.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, randomTensor } from './helpers/graph.ts';

const GEMM_RULE = 'independent twin FP8 GEMMs => GroupedGemm';
const K = 128;
const grouped = (g: Graph): Node[] => g.nodes.filter((n) => n.domain === 'dc' && n.op === 'GroupedGemm');

type Spec = [string, string[], string[], Record<string, number | string>?];
/** A stream: per-token fp8 Quantize of x_s, then QLinear (bf16 Y, a float32 bias) by W_s [n, k]. */
const stream = (s: string, x = `x_${s}`): Spec[] => [
  ['dc.Quantize', [`W_${s}`], [`wq_${s}`, `ws_${s}`], { format: 'fp8', axis: 1 }],
  ['dc.Quantize', [x], [`q_${s}`, `qs_${s}`], { format: 'fp8', axis: -1 }],
  ['dc.QLinear', [`q_${s}`, `qs_${s}`, `wq_${s}`, `ws_${s}`, `b_${s}`], [`y_${s}`], { transB: 1, format: 'fp8', to: 16 }],
];
/** Two streams: `big` rows by W_img [192, 128] and `small` rows by W_txt [n, 128]. */
function twins(big: number, small: number, n = 192, extra: Spec[] = [], outputs = ['y_img', 'y_txt']): Inferred {
  return buildGraph({
    inputs: { x_img: ['float32', [1, big, K]], x_txt: ['float32', [1, small, K]] },
    constants: { W_img: randomTensor([192, K], 1, 'float32', 0.1), b_img: randomTensor([192], 2), W_txt: randomTensor([n, K], 3, 'float32', 0.1), b_txt: randomTensor([n], 4) },
    nodes: [...stream('img'), ...stream('txt'), ...extra],
    outputs,
  });
}
/** fuse-horizontal with twin GEMMs where the own kernel takes a launch of at least minTiles tiles (or with the options given). */
function fuse(g: Inferred, minTiles: number | undefined | HorizontalOptions) {
  const options = typeof minTiles === 'object' ? minTiles : minTiles === undefined ? {} : { gemms: { minTiles } };
  const { after, report } = applyPass(makeFuseHorizontal(options), g);
  expectTopologicallySorted(after.graph);
  expectSameResults(g.graph, after.graph, 5);
  return { after, fired: report.rewrites[GEMM_RULE] ?? 0 };
}

describe('fuse-horizontal: independent twin FP8 GEMMs => GroupedGemm', () => {
  it('a 512-row GEMM (4 tiles) and a 64-row twin (1 tile) at 3 tiles a launch: one node, its body the two QLinears, the same values and FLOPs', () => {
    const g = twins(512, 64);
    const { after, fired } = fuse(g, 3);
    expect(fired).toBe(1);
    const [node] = grouped(after.graph);
    expect(node.body!.nodes.map((n) => [n.op, n.outputs[0]])).toEqual([['QLinear', 'y_img'], ['QLinear', 'y_txt']]);
    expect(node.outputs).toEqual(['y_img', 'y_txt']);
    expect(after.graph.nodes.filter((n) => n.op === 'QLinear')).toEqual([]);
    expect(countFlops(after.graph)).toBe(countFlops(g.graph));
    expect(countFlops(g.graph)).toBe(2 * (512 + 64) * 192 * K);
  });

  it('stays apart: the smaller one big enough alone (1 tile a launch), a pair under the launch\'s tiles, another N, no option', () => {
    expect(fuse(twins(512, 64), 1).fired).toBe(0);
    expect(fuse(twins(512, 64), 6).fired).toBe(0);
    expect(fuse(twins(512, 64, 384), 3).fired).toBe(0);
    expect(fuse(twins(512, 64), undefined).fired).toBe(0);
  });

  it('a GEMM that feeds its twin (through its quantized output) stays apart; the same pair independent is grouped', () => {
    // N = K = 384 (K a multiple of 128, as the own kernel needs): y_txt = QLinear(Quantize(y_img)), or of x_txt.
    const pair = (dependent: boolean) => buildGraph({
      inputs: { x_img: ['float32', [1, 256, 384]], x_txt: ['float32', [1, 64, 384]] },
      constants: { W_img: randomTensor([384, 384], 1, 'float32', 0.1), b_img: randomTensor([384], 2), W_txt: randomTensor([384, 384], 3, 'float32', 0.1), b_txt: randomTensor([384], 4) },
      nodes: [...stream('img'), ...stream('txt', dependent ? 'y_img' : 'x_txt')],
      outputs: dependent ? ['y_txt'] : ['y_img', 'y_txt'],
    });
    // 4 + 2 tiles together, the 64-row one's 2 alone: under 3.
    expect(fuse(pair(false), 3).fired).toBe(1);
    expect(fuse(pair(true), 3).fired).toBe(0);
  });
});

describe('which compiles group twin GEMMs (compiler/compile.ts horizontalFor)', () => {
  // The default h100 policy with the own kernel's launch threshold lowered to the pair's 5 tiles (512 + 64 rows).
  const policy = (p: Partial<PrecisionPolicy> = {}): PrecisionPolicy => ({ ...defaultPolicy('fp8'), ownGemmMinTiles: 3, ...p });
  it('h100 with the default policy: the own kernel at its threshold, fast accumulation, scales in its epilogue: grouped', () => {
    expect(horizontalFor(defaultPolicy('fp8'), 'h100')).toEqual({ gemms: { minTiles: OWN_GEMM_MIN_TILES } });
    expect(fuse(twins(512, 64), horizontalFor(policy(), 'h100')).fired).toBe(1);
  });
  it('apart with fp32 accumulation (the own kernel promotes), with the scales in the readers, with cuBLASLt, or on b200', () => {
    expect(ownGemmFor(policy({ accumulation: 'fp32' }), 'h100')).toEqual({ promote: 8, minTiles: 3 });
    for (const [p, target] of [[policy({ accumulation: 'fp32' }), 'h100'], [policy({ gemmScales: 'readers' }), 'h100'], [policy({ gemm: 'cublaslt' }), 'h100'], [policy(), 'b200'], [undefined, 'h100']] as const) {
      expect(horizontalFor(p, target)).toEqual({});
      expect(fuse(twins(512, 64), horizontalFor(p, target)).fired).toBe(0);
    }
    expect(ownGemmFor(policy(), 'b200')).toBeUndefined();
  });
});

describe('the own kernel with a twin', () => {
  const base: GemmDescriptor = { kind: 'gemm-fp8', m: 8192, n: 9216, k: 3072, bn: 192, stages: 4, groupM: 33, promote: 0, epilogue: 'scaled', bias: true, biasType: 'bfloat16', schedule: 'pingpong' };

  it('refuses a twin outside the ping-pong with bf16 Y, or of no rows; counts both GEMMs\' tiles', () => {
    expect(() => renderGemm({ ...base, twinM: 64, schedule: 'cooperative' })).toThrow(/a twin of at least one row with the ping-pong schedule and a bf16 Y/);
    expect(() => renderGemm({ ...base, twinM: 0 })).toThrow(/twin rows 0/);
    expect(() => renderGemm({ ...base, twinM: 64, out: 'fp32' })).toThrow(/bf16 Y/);
    expect(renderGemm({ ...base, m: 128, n: 1536, twinM: 64 }).grid).toBe(16); // 8 + 8 tiles
    // Qwen-Image's 64 text rows alone: 48 tiles, under 264; with the image GEMM's 3072: taken.
    expect(ownGemmTakes(64, 9216, 3072, 'bfloat16')).toBe(false);
    expect(ownGemmTakes(64, 9216, 3072, 'bfloat16', undefined, 264, 0)).toBe(false);
    expect(ownGemmTakes(100, 9216, 3072, 'bfloat16', undefined, 96, 100)).toBe(true); // 48 + 48 tiles
    expect(ownGemmTakes(8192, 9216, 3072, 'float32', undefined, 264, 64)).toBe(false); // a twin writes bf16
    expect(ownGemm(8192, 9216, 3072, 8, 'bfloat16', undefined, 264, 64)).toBeUndefined(); // promotion: cooperative
  });

  it('the twin\'s maps, pointer and vectors follow the first\'s; its tiles follow the first\'s in the tile order', () => {
    const own = ownGemm(8192, 9216, 3072, 0, 'bfloat16', { xs: 'float32', ws: 'float32', bias: 'bfloat16' }, 264, 64)!;
    expect(own.maps.map((m) => [m.param, m.rows, m.cols])).toEqual([[0, 8192, 3072], [1, 9216, 3072], [2, 8192, 9216], [7, 64, 3072], [8, 9216, 3072], [9, 64, 9216]]);
    const k = own.kernel.source;
    expect(k).toMatch(/const __grid_constant__ DcTensorMap tmX2, const __grid_constant__ DcTensorMap tmW2, const __grid_constant__ DcTensorMap tmY2, __nv_bfloat16\* __restrict__ out2, const float\* __restrict__ xs2, const float\* __restrict__ ws2, const __nv_bfloat16\* __restrict__ bias2\)/);
    expect(k).toMatch(/constexpr int M2 = 64, TILES_M2 = \(M2 \+ BM - 1\) \/ BM, TILES1 = TILES_M \* TILES_N, TILES = TILES1 \+ TILES_M2 \* TILES_N;/);
    expect(k).toMatch(/twin = t >= TILES1;\s*if \(twin\) \{ t -= TILES1; m0 = \(t % TILES_M2\) \* BM; n0 = \(t \/ TILES_M2\) \* BN; return; \}/);
    expect(k).toMatch(/const DcTensorMap\* mapX = twin \? &tmX2 : &tmX;/);
    expect(k).toMatch(/const DcTensorMap\* mapY = twin \? &tmY2 : &tmY;/);
    expect(k).toMatch(/const int rowsT = twin \? M2 : M;/);
    expect(k).toMatch(/const __nv_bfloat16\* biasT = twin \? bias2 : bias;/);
    // Without a twin: none of it, and no twin tiles.
    const plain = ownGemm(8192, 9216, 3072, 0, 'bfloat16', { xs: 'float32', ws: 'float32', bias: 'bfloat16' })!;
    expect(plain.maps).toHaveLength(3);
    expect(plain.kernel.source).not.toMatch(/tmX2/);
    expect(plain.kernel.source).toMatch(/constexpr int M2 = 0,/);
  });
});

describe('GroupedGemm in the launch plan', () => {
  type KernelLaunch = Extract<Launch, { kind: 'kernel' }>;
  const plan = (g: Graph, own: boolean) => {
    const deferred = deferDequant(g);
    return kernelPlan(g, planMemory(g, lateReads(g, deferred)), deferred, own ? { fastAccum: true, ownGemm: { promote: 0, minTiles: 3 } } : { fastAccum: true });
  };

  it('one launch of the own kernel: the GEMM of more rows first (whatever the body order), each X, W, Y, Y, xs, ws, bias; its maps; scaled (no GEMM deferred)', () => {
    // The text stream first in graph order: the launch still puts the image GEMM (more rows) first.
    const g = buildGraph({
      inputs: { x_img: ['float32', [1, 512, K]], x_txt: ['float32', [1, 64, K]] },
      constants: { W_img: randomTensor([192, K], 1, 'float32', 0.1), b_img: randomTensor([192], 2), W_txt: randomTensor([192, K], 3, 'float32', 0.1), b_txt: randomTensor([192], 4) },
      nodes: [...stream('txt'), ...stream('img')],
      outputs: ['y_img', 'y_txt'],
    });
    const after = fuse(g, 3).after.graph;
    expect(grouped(after)[0].body!.nodes.map((n) => n.outputs[0])).toEqual(['y_txt', 'y_img']);
    expect(deferDequant(after).size).toBe(0);
    const gemms = plan(after, true).launches.filter((l): l is KernelLaunch => l.kind === 'kernel' && l.kernel.startsWith('gemm8_'));
    expect(gemms).toHaveLength(1);
    const [l] = gemms;
    const values = (s: string) => [`q_${s}`, `wq_${s}`, `y_${s}`, `y_${s}`, `qs_${s}`, `ws_${s}`, `b_${s}`];
    expect(l.args.map((a) => a.value)).toEqual([...values('img'), ...values('txt')]);
    expect(l.maps!.map((m) => [m.param, m.rows])).toEqual([[0, 512], [1, 192], [2, 512], [7, 64], [8, 192], [9, 64]]);
    expect(l.grid).toBe(5);
  });

  it('refuses a group whose GEMMs differ in bias or types (one kernel\'s parameters for both), naming the launch', () => {
    const after = fuse(twins(512, 64), 3).after.graph;
    const node = grouped(after)[0];
    const noBias = { ...node, body: { ...node.body!, nodes: node.body!.nodes.map((n, i) => (i === 1 ? { ...n, inputs: n.inputs.slice(0, 4) } : n)) } };
    const broken = { ...after, nodes: after.nodes.map((n) => (n === node ? noBias : n)) };
    expect(() => plan(broken, true)).toThrow(/GroupedGemm launch -> y_img: expected GEMMs of one scale, bias and output type/);
  });

  it('without the own kernel: each GEMM its own cuBLASLt launch, scaled', () => {
    const after = fuse(twins(512, 64), 3).after.graph;
    const gemms = plan(after, false).launches.filter((l) => l.kind === 'gemm');
    expect(gemms.map((l) => [l.node, l.m, l.kind === 'gemm' && l.unscaled])).toEqual([['y_img', 512, undefined], ['y_txt', 64, undefined]]);
  });

  it('launches with the node\'s values where a later pass renamed them, not the body\'s formal names', () => {
    // remove-noops renames y_txt to the graph output o; the body keeps y_txt.
    const after = fuse(twins(512, 64, 192, [['Identity', ['y_txt'], ['o']]], ['y_img', 'o']), 3).after;
    const renamed = applyPass(removeNoops, after).after.graph;
    const [node] = grouped(renamed);
    expect([node.outputs, node.body!.outputs]).toEqual([['y_img', 'o'], ['y_img', 'y_txt']]);
    const [l] = plan(renamed, true).launches.filter((x): x is KernelLaunch => x.kind === 'kernel' && x.kernel.startsWith('gemm8_'));
    expect(l.args.map((a) => a.value).slice(7, 11)).toEqual(['q_txt', 'wq_txt', 'o', 'o']);
    expect(countFlops(renamed)).toBe(2 * (512 + 64) * 192 * K);
  });
});
