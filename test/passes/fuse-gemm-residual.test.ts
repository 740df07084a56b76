/**
 * The gated residual add in the own FP8 GEMM's epilogue (passes/fuse-gemm-residual.ts; QLinear's
 * epilogue "residual" in compiler/ops/quant.ts; templates/gemm_fp8.cu.njk; the plan in
 * compiler/codegen/plan.ts). The pass: what it fuses (QLinear -> Mul(gate) -> Add(r), the gate by
 * batch, the own kernel running the GEMM alone or as a twin) with the reference executor's values
 * exactly unchanged, and what it leaves; a fused GEMM that found no twin gets its Mul and Add back.
 * The plan: the gate's pointer and R's tensor map after each GEMM's scales, the gate's batch rows
 * where the modulation's output holds them. The descriptor: what it refuses, its shared memory as the
 * template lays it out. Bit-exactness on an H100: the models' outputs against the unfused build
 * (bench/RESULTS.md "Session 20").
 */
import { describe, expect, it } from 'vitest';
import { type GemmDescriptor, gemmSharedBytes, ownGemm, renderGemm } from '../../compiler/codegen/gemm.ts';
import { lateReads } from '../../compiler/codegen/dequant.ts';
import { deferDequant, kernelPlan, type Launch } from '../../compiler/codegen/plan.ts';
import type { DType } from '../../compiler/ir/dtype.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import { makeFuseGemmResidual, makeUnfuseGemmResidual } from '../../passes/fuse-gemm-residual.ts';
import { makeFuseHorizontal } from '../../passes/fuse-horizontal.ts';
import { planMemory } from '../../passes/plan-memory.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, ints, randomTensor } from '../helpers/graph.ts';

const RULE = 'QLinear -> Mul(gate) -> Add(residual) => QLinear residual epilogue';
const UNDO = 'residual QLinear the own GEMM does not run => QLinear, Mul, Add';
const K = 128, N = 192;
const residual = (g: Graph): Node[] => g.nodes.filter((n) => n.op === 'QLinear' && n.attrs.epilogue === 'residual');

type Spec = [string, string[], string[], Record<string, number | string>?];
/** A stream s of `rows` tokens a batch: y = QLinear(Quantize(x)) (bf16, a bf16 bias, the own kernel's accumulation), out = r + y · gate. */
const stream = (s: string, x = `x_${s}`, mul: [string, string] = [`y_${s}`, `g_${s}`]): Spec[] => [
  ['dc.Quantize', [`W_${s}`], [`wq_${s}`, `ws_${s}`], { format: 'fp8', axis: 1 }],
  ['dc.Quantize', [x], [`q_${s}`, `qs_${s}`], { format: 'fp8', axis: -1 }],
  ['dc.QLinear', [`q_${s}`, `qs_${s}`, `wq_${s}`, `ws_${s}`, `b_${s}`], [`y_${s}`], { transB: 1, format: 'fp8', to: 16, accumulate: 'sm90' }],
  ['Mul', mul, [`m_${s}`]],
  ['Add', [`r_${s}`, `m_${s}`], [`out_${s}`]],
];
interface StreamShape { rows: number; batches?: number; gate?: number[]; r?: number[]; bias?: 'bfloat16' | 'float32' }
function graph(streams: Record<string, StreamShape>, extra: Spec[] = [], outputs?: string[], x: Record<string, string> = {}): Inferred {
  const inputs: Record<string, [DType, number[]]> = {}, constants: Record<string, ReturnType<typeof randomTensor>> = {};
  let seed = 1;
  for (const [s, o] of Object.entries(streams)) {
    const b = o.batches ?? 2;
    if (!x[s]) inputs[`x_${s}`] = ['float32', [b, o.rows, K]];
    inputs[`g_${s}`] = ['bfloat16', o.gate ?? [b, 1, N]];
    inputs[`r_${s}`] = ['bfloat16', o.r ?? [b, o.rows, N]];
    constants[`W_${s}`] = randomTensor([N, K], seed++, 'float32', 0.1);
    constants[`b_${s}`] = randomTensor([N], seed++, o.bias ?? 'bfloat16', 0.1);
  }
  return buildGraph({ inputs, constants, nodes: [...Object.keys(streams).flatMap((s) => stream(s, x[s])), ...extra], outputs: outputs ?? Object.keys(streams).map((s) => `out_${s}`) });
}
/**
 * `base` with its input `input` made instead by `nodes` (after the first `at` of base's nodes), from
 * `inputs` and `constants` added to base's.
 */
function withInputMade(base: Inferred, input: string, made: { nodes: Spec[]; at?: number; inputs?: Record<string, [DType, number[]]>; constants?: Record<string, Tensor> }, outputs = base.graph.outputs): Inferred {
  const typeOf = (v: string) => base.graph.types.get(v) as unknown as { dtype: DType; shape: number[] };
  const specs = base.graph.nodes.map((n): Spec => [`${n.domain ? 'dc.' : ''}${n.op}`, [...n.inputs], [...n.outputs], n.attrs as Record<string, number | string>]);
  const at = made.at ?? 0;
  return buildGraph({
    inputs: { ...Object.fromEntries(base.graph.inputs.filter((v) => v !== input).map((v) => [v, [typeOf(v).dtype, typeOf(v).shape] as [DType, number[]]])), ...made.inputs },
    constants: { ...Object.fromEntries([...base.graph.constants].map(([k, c]) => [k, (c.source as { tensor: Tensor }).tensor])), ...made.constants },
    nodes: [...specs.slice(0, at), ...made.nodes, ...specs.slice(at)],
    outputs: [...outputs],
  });
}
/** The own GEMM's launch in the plan of `g` (fast accumulation, the own kernel from `minTiles` tiles), and its kernel's source. */
function gemmLaunch(g: Graph, minTiles: number) {
  const deferred = deferDequant(g);
  const plan = kernelPlan(g, planMemory(g, lateReads(g, deferred)), deferred, { fastAccum: true, ownGemm: { promote: 0, minTiles } });
  const [launch] = plan.launches.filter((x): x is Extract<Launch, { kind: 'kernel' }> => x.kind === 'kernel' && x.kernel.startsWith('gemm8_'));
  return { launch, source: plan.kernels.find((k) => k.name === launch.kernel)!.source, deferred };
}
function fuse(g: Inferred, minTiles: number) {
  const { after, report } = applyPass(makeFuseGemmResidual({ minTiles }), g);
  expectTopologicallySorted(after.graph);
  // The reference's values, bit for bit: the epilogue is those Mul and Add.
  expectSameResults(g.graph, after.graph, 5, { tolerance: 0 });
  return { after, fired: report.rewrites[RULE] ?? 0 };
}

describe('fuse-gemm-residual: QLinear -> Mul(gate) -> Add(r) => QLinear{epilogue: residual}', () => {
  it('one node: the GEMM\'s inputs, the gate and r, the Add\'s output; the Mul and Add gone; the same values', () => {
    const { after, fired } = fuse(graph({ img: { rows: 256 } }), 1);
    expect(fired).toBe(1);
    const [q] = residual(after.graph);
    expect(q.inputs).toEqual(['q_img', 'qs_img', 'wq_img', 'ws_img', 'b_img', 'g_img', 'r_img']);
    expect(q.outputs).toEqual(['out_img']);
    expect(after.graph.nodes.some((n) => n.op === 'Mul' || n.op === 'Add')).toBe(false);
  });

  it('either operand order of the Mul; a gate of one row for all (broadcast); no bias', () => {
    const swapped = buildGraph({
      inputs: { x: ['float32', [2, 256, K]], g: ['bfloat16', [1, 1, N]], r: ['bfloat16', [2, 256, N]] },
      constants: { W: randomTensor([N, K], 1, 'float32', 0.1) },
      nodes: [
        ['dc.Quantize', ['W'], ['wq', 'ws'], { format: 'fp8', axis: 1 }], ['dc.Quantize', ['x'], ['q', 'qs'], { format: 'fp8', axis: -1 }],
        ['dc.QLinear', ['q', 'qs', 'wq', 'ws'], ['y'], { transB: 1, format: 'fp8', to: 16, accumulate: 'sm90' }],
        ['Mul', ['g', 'y'], ['m']], ['Add', ['m', 'r'], ['out']],
      ],
      outputs: ['out'],
    });
    const { after, fired } = fuse(swapped, 1);
    expect(fired).toBe(1);
    expect(residual(after.graph)[0].inputs).toEqual(['q', 'qs', 'wq', 'ws', '', 'g', 'r']);
  });

  it('stays apart: y or the Mul read elsewhere or a graph output, a gate by token, r broadcast, an fp32 bias, rows a batch off 16, the own kernel not taking the GEMM', () => {
    expect(fuse(graph({ img: { rows: 256 } }, [['Neg', ['y_img'], ['z']]], ['out_img', 'z']), 1).fired).toBe(0);
    expect(fuse(graph({ img: { rows: 256 } }, [['Neg', ['m_img'], ['z']]], ['out_img', 'z']), 1).fired).toBe(0);
    expect(fuse(graph({ img: { rows: 256 } }, [], ['out_img', 'y_img']), 1).fired).toBe(0);
    expect(fuse(graph({ img: { rows: 256, gate: [2, 256, N] } }), 1).fired).toBe(0);
    expect(fuse(graph({ img: { rows: 256, r: [1, 256, N] } }), 1).fired).toBe(0);
    expect(fuse(graph({ img: { rows: 256, bias: 'float32' } }), 1).fired).toBe(0);
    expect(fuse(graph({ img: { rows: 40 } }), 1).fired).toBe(0); // 40 rows a batch, 2 batches
    expect(fuse(graph({ img: { rows: 256 } }), 5).fired).toBe(0); // 4 tiles, under 5
    // A gate of more dims than y; four batches of 16 rows (a tile would stage 4 gate rows: past the shared memory).
    expect(fuse(graph({ img: { rows: 256, gate: [1, 1, 1, N] } }), 1).fired).toBe(0);
    expect(fuse(graph({ img: { rows: 16, batches: 4 } }), 1).fired).toBe(0);
    // r a strided window (rows 0..255 of each batch's 512): the kernel copies it by a dense tensor map.
    const strided = withInputMade(graph({ img: { rows: 256 } }), 'r_img', {
      inputs: { big: ['bfloat16', [2, 512, N]] }, constants: { starts: ints([0]), ends: ints([256]), axes: ints([1]) },
      nodes: [['Neg', ['big'], ['nb']], ['Slice', ['nb', 'starts', 'ends', 'axes'], ['r_img']]],
    });
    expect(fuse(strided, 1).fired).toBe(0);
  });

  it('a pair neither of which the own kernel takes alone, but together: both fuse, and fuse-horizontal groups them', () => {
    // img: 2 x 256 rows, 4 tiles; txt: 2 x 32 rows, 1 tile; at 5 tiles a launch only the pair is taken.
    const { after, fired } = fuse(graph({ img: { rows: 256 }, txt: { rows: 32 } }), 5);
    expect(fired).toBe(2);
    const grouped = applyPass(makeFuseHorizontal({ gemms: { minTiles: 5 } }), after).after;
    expect(grouped.graph.nodes.filter((n) => n.op === 'GroupedGemm')).toHaveLength(1);
  });

  it('the plan reads a gate that is a window of a wider value (a modulation output split by block) by its batch stride', () => {
    // mod [2, 1, 2N] split in two gates of N: each batch's gate row 2N elements after the last.
    const g = withInputMade(graph({ img: { rows: 256 } }), 'g_img', {
      inputs: { mod: ['bfloat16', [2, 1, 2 * N]] }, constants: { halves: ints([N, N]) },
      nodes: [['Neg', ['mod'], ['nmod']], ['Split', ['nmod', 'halves'], ['g_img', 'g_other'], { axis: -1 }]],
    }, ['out_img', 'g_other']);
    const { launch, source } = gemmLaunch(fuse(g, 1).after.graph, 1);
    expect(launch.args[7].value).toBe('g_img');
    expect(source).toMatch(new RegExp(`gateStride = ${2 * N};`));
  });

  it('twins: a stream the own kernel would not take alone fuses beside a bigger one of the same N and K, fuse-horizontal groups them, and the launch carries each GEMM\'s gate and R', () => {
    // img: 2 x 256 rows, 4 tiles; txt: 2 x 32 rows, 1 tile; at 3 tiles a launch only the pair is taken.
    const g = graph({ img: { rows: 256 }, txt: { rows: 32 } });
    const { after, fired } = fuse(g, 3);
    expect(fired).toBe(2);
    const grouped = applyPass(makeFuseHorizontal({ gemms: { minTiles: 3 } }), after).after;
    const [node] = grouped.graph.nodes.filter((n) => n.op === 'GroupedGemm');
    expect(node.body!.nodes.map((n) => n.attrs.epilogue)).toEqual(['residual', 'residual']);
    expect(applyPass(makeUnfuseGemmResidual({ minTiles: 3 }), grouped).report.rewrites[UNDO]).toBe(0);
    const { launch: l, source: src, deferred } = gemmLaunch(grouped.graph, 3);
    expect(deferred.size).toBe(0);
    const values = (s: string) => [`q_${s}`, `wq_${s}`, `out_${s}`, `out_${s}`, `qs_${s}`, `ws_${s}`, `b_${s}`, `g_${s}`, `r_${s}`];
    expect(l.args.map((a) => a.value)).toEqual([...values('img'), ...values('txt')]);
    // X, W, Y, then R (the last argument of each GEMM's nine), for both.
    expect(l.maps!.map((m) => [m.param, m.rows, m.cols])).toEqual([[0, 512, K], [1, N, K], [2, 512, N], [8, 512, N], [9, 64, K], [10, N, K], [11, 64, N], [17, 64, N]]);
    // Each GEMM's gate: 2 batches of 256 and of 32 rows, rows N apart (dense inputs).
    expect(src).toMatch(/gateS = twin \? 5 : 8, gateB = twin \? 2 : 2, gateStride = twin \? 192 : 192;/);
  });

  it('a fused GEMM that found no twin (its partner reads its output) gets its Mul and Add back, the values unchanged', () => {
    // txt's residual is made from img's output: fuse-horizontal cannot group them, and txt alone (1 tile) is under 3.
    const g = withInputMade(graph({ img: { rows: 256 }, txt: { rows: 32 } }, [], ['out_txt']), 'r_txt', {
      at: 5, constants: { starts: ints([0]), ends: ints([32]), axes: ints([1]) },
      nodes: [['Slice', ['out_img', 'starts', 'ends', 'axes'], ['s_img']], ['Neg', ['s_img'], ['r_txt']]],
    });
    const { after, fired } = fuse(g, 3);
    expect(fired).toBe(2);
    const grouped = applyPass(makeFuseHorizontal({ gemms: { minTiles: 3 } }), after).after;
    expect(grouped.graph.nodes.filter((n) => n.op === 'GroupedGemm')).toHaveLength(0);
    const { after: undone, report } = applyPass(makeUnfuseGemmResidual({ minTiles: 3 }), grouped);
    expect(report.rewrites[UNDO]).toBe(1);
    expect(residual(undone.graph).map((n) => n.outputs[0])).toEqual(['out_img']);
    expect(undone.graph.nodes.find((n) => n.op === 'QLinear' && n.attrs.epilogue === 'none')?.outputs).toEqual(['out_txt/gemm']);
    expectSameResults(g.graph, undone.graph, 5, { tolerance: 0 });
    // 'none' marks it: the next round does not fuse it again.
    expect(applyPass(makeFuseGemmResidual({ minTiles: 3 }), undone).report.rewrites[RULE]).toBe(0);
  });
});

describe('the own kernel\'s residual epilogue (descriptor)', () => {
  const base: GemmDescriptor = {
    kind: 'gemm-fp8', m: 8192, n: 3072, k: 3072, bn: 192, stages: 4, groupM: 33, promote: 0, epilogue: 'scaled', bias: true, biasType: 'bfloat16', schedule: 'pingpong',
    twinM: 64, residual: { gemms: [{ batches: 2, rowsPerBatch: 4096, batchStride: 18432 }, { batches: 2, rowsPerBatch: 32, batchStride: 18432 }] },
  };
  it('refuses it outside the scaled ping-pong with bf16 Y, with an fp32 bias, without a gate for each GEMM, or with several batches of rows off 16', () => {
    expect(() => renderGemm({ ...base, twinM: undefined, schedule: 'cooperative' })).toThrow(/the residual epilogue in the ping-pong schedule with scales and a bf16 Y/);
    expect(() => renderGemm({ ...base, epilogue: 'unscaled', bias: false })).toThrow(/the residual epilogue in the ping-pong/);
    expect(() => renderGemm({ ...base, biasType: 'float32' })).toThrow(/no bias or a bf16 one/);
    expect(() => renderGemm({ ...base, twinM: undefined })).toThrow(/a gate for each GEMM of the launch/);
    expect(() => renderGemm({ ...base, residual: { gemms: [base.residual!.gemms[0], { batches: 2, rowsPerBatch: 40, batchStride: 0 }] } })).toThrow(/a multiple of 16/);
    expect(ownGemm(8192, 3072, 3072, 8, 'bfloat16', { xs: 'float32', ws: 'float32' }, 264, undefined, [{ batches: 1, rowsPerBatch: 8192, batchStride: 0 }])).toBeUndefined(); // promotion
  });
  it('four stages; its shared memory (R chunk buffers for a half tile, record rows, barriers) is what the template lays out, within the 227 KB a CTA has', () => {
    const base4 = { ...base, stages: 4 }, k = renderGemm(base4);
    expect(k.source).toMatch(/SCALE_BYTES = \(GATE_ROWS \* BN \/ 2\) \* 16 \+ 128 \* 4, SCALES_BYTES = 2 \* SCALE_BYTES;/);
    expect(k.source).toMatch(/constexpr int GATE_ROWS = 2;/); // the twin's 32-row batches: a tile reaches two
    expect(k.source).toMatch(/constexpr int YBUFS = BN \/ 64;/);
    // Stages, then 2 warpgroups x 3 chunks of 8 KB, both warpgroups' records (2 rows of 96) and token scales, 4 more barriers.
    expect(k.sharedBytes).toBe(1024 + 4 * (128 * 128 + 192 * 128) + 2 * 3 * 8192 + 2 * (2 * 96 * 16 + 128 * 4) + 32 + 16 * 4);
    expect(k.sharedBytes).toBe(gemmSharedBytes(base4));
    expect(k.sharedBytes).toBeLessThanOrEqual(232448);
    expect(ownGemm(4608, 6144, 24576, 0, 'bfloat16', { xs: 'float32', ws: 'float32' }, 264, undefined, [{ batches: 1, rowsPerBatch: 4608, batchStride: 0 }])!.kernel.source).toMatch(/STAGES = 4/);
  });
});
