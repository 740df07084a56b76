/**
 * GEMM attention (passes/lower-attention.ts): a FusedAttention whose head dim the flash kernels do
 * not take becomes ActMatMul (scores, fp32) -> FusedKernel (Softmax, Cast) -> ActMatMul. On the CPU:
 * the lowered graph computes what the unlowered one does (reference executor; head dims 256, 384,
 * 512, q/k/v as strided Split parts), what is refused stays FusedAttention, the kernel plan turns
 * both GEMMs into cuBLASLt launches whose B is an activation (row strides of the views), the
 * runtime maps them onto cuBLASLt (specFor) and refuses malformed ones by name, and the full-size
 * VAE decoders' plans (bundled, models/full) have no pending launch left. Numerics on the GPU:
 * test/gpu/gemm-attention.ts cases through run-cli (bench/results/vae-attention-2026-11-25b.md).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Launch, kernelPlan, matrixLd } from '../compiler/codegen/plan.ts';
import { runReference } from '../compiler/exec/reference.ts';
import { fullModelPath } from '../compiler/full-models.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { compareOutputs } from '../compiler/verify.ts';
import { lowerAttention } from '../passes/lower-attention.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { specFor } from '../runtime/gpu/cublaslt.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, opsOf } from './helpers/graph.ts';
import { gemmAttentionGraphs, gemmAttentionInput, gemmAttentionModel } from './gpu/gemm-attention.ts';

const tmp = mkdtempSync(join(tmpdir(), 'gemm-attn-'));
const onnxCase = (s: number, d: number) => {
  const file = join(tmp, `s${s}-d${d}.onnx`);
  writeFileSync(file, gemmAttentionModel(s, d));
  return gemmAttentionGraphs(file);
};

type GemmLaunch = Extract<Launch, { kind: 'gemm' }>;
const actGemms = (g: Graph) => kernelPlan(g, planMemory(g)).launches.filter((l): l is GemmLaunch => l.kind === 'gemm' && !!l.act);

/** One FusedAttention over q/k/v graph inputs (bhsd unless `layouts`), lowered by lower-attention alone. */
function attention(opts: { b?: number; h?: number; s?: number; d?: number; dtype?: 'float32' | 'bfloat16'; mask?: boolean; attrs?: Record<string, number | string | string[]> } = {}) {
  const { b = 1, h = 1, s = 24, d = 256, dtype = 'bfloat16' } = opts;
  const inputs: Record<string, [typeof dtype | 'bool', number[]]> = { q: [dtype, [b, h, s, d]], k: [dtype, [b, h, s, d]], v: [dtype, [b, h, s, d]] };
  if (opts.mask) inputs.mask = ['bool', [b, h, s, s]];
  const before = buildGraph({
    inputs, outputs: ['y'],
    nodes: [['dc.FusedAttention', [opts.mask ? 'mask' : '', 'q', 'k', 'v', '', '', '', ''], ['y'], { segments: 1, ...(opts.attrs ?? {}) }]],
  });
  return { before: before.graph, after: applyPass(lowerAttention, before).after.graph };
}

describe('lower-attention: head dims above 128 => GEMM, softmax, GEMM', () => {
  it.each([[64, 256], [48, 384], [64, 512]])('S=%i, head dim %i: the lowered graph computes the unlowered one (q/k/v strided Split parts, bf16 P)', (s, d) => {
    const { before, after } = onnxCase(s, d);
    expect(opsOf(before)).toContain('FusedAttention');
    expect(opsOf(after).filter((o) => ['FusedAttention', 'PackedAttention', 'AttentionPack'].includes(o))).toEqual([]);
    expect(opsOf(after).filter((o) => ['ActMatMul', 'FusedKernel'].includes(o))).toEqual(['ActMatMul', 'FusedKernel', 'ActMatMul']);
    expectTopologicallySorted(after);
    const qkv = gemmAttentionInput(s, d);
    const { relL2, cosine } = compareOutputs(runReference(after, { qkv }), runReference(before, { qkv }));
    // P is rounded to bf16 as the flash kernels' P is (measured 2.2e-3 at head dims 256 and 512).
    expect(relL2).toBeLessThan(5e-3);
    expect(relL2).toBeGreaterThan(0);
    expect(cosine).toBeGreaterThan(0.9999);
  });

  it('float32 q/k/v: the same rewrite is exact (P stays float32), scale as the first GEMM\'s alpha', () => {
    const { before, after } = attention({ dtype: 'float32', attrs: { scale: 0.3 } });
    expectSameResults(before, after, 4, { tolerance: 1e-6 });
    const [scores, out] = after.nodes.filter((n) => n.op === 'ActMatMul');
    expect(scores.attrs).toMatchObject({ transB: 1, alpha: 0.3, to: 1 });
    expect(out.attrs).toMatchObject({ transB: 0, to: 1, shape: [1, 1, 24, 256] });
    const softmax = after.nodes.find((n) => n.op === 'FusedKernel')!;
    expect(softmax.body!.nodes.map((n) => n.op)).toEqual(['Softmax', 'Cast']);
    expect(after.types.get(scores.outputs[0])).toMatchObject({ dtype: 'float32', shape: [1, 1, 24, 24] });
  });

  it('the default scale is 1/sqrt(head dim); the flash head dims still go to AttentionPack + PackedAttention', () => {
    const { after } = attention({ d: 512 });
    expect(after.nodes.find((n) => n.op === 'ActMatMul')!.attrs.alpha).toBeCloseTo(1 / Math.sqrt(512), 12);
    expect(opsOf(attention({ d: 128 }).after)).toEqual(['AttentionPack', 'PackedAttention']);
  });

  it.each([
    ['a mask', { mask: true }],
    ['two heads', { h: 2 }],
    ['batch 2', { b: 2 }],
    ['causal', { attrs: { causal: 1 } }],
    ["qk 'fp8'", { attrs: { qk: 'fp8' } }],
  ] as const)('must not rewrite: %s (stays FusedAttention, pending in the kernel plan)', (_, opts) => {
    const { after } = attention(opts);
    expect(opsOf(after)).toEqual(['FusedAttention']);
    expect(kernelPlan(after, planMemory(after)).pending).toEqual({ 'dc.FusedAttention': 1 });
  });
});

describe('kernel plan and runtime: GEMMs whose B is an activation', () => {
  it('row strides of a matrix view: dense, evenly strided rows, and windows that are not matrices', () => {
    expect(matrixLd([{ size: 1, stride: 0 }, { size: 16, stride: 8 }, { size: 8, stride: 1 }], 8)).toBe(8);
    expect(matrixLd([{ size: 1, stride: 99 }, { size: 16, stride: 24 }, { size: 1, stride: 8 }, { size: 8, stride: 1 }], 8)).toBe(24);
    expect(matrixLd([{ size: 4, stride: 96 }, { size: 4, stride: 24 }, { size: 8, stride: 1 }], 8)).toBe(24);
    expect(matrixLd([{ size: 4, stride: 100 }, { size: 4, stride: 24 }, { size: 8, stride: 1 }], 8)).toBeUndefined(); // gap between row runs
    expect(matrixLd([{ size: 16, stride: 8 }, { size: 8, stride: 2 }], 8)).toBeUndefined(); // strided columns
    expect(matrixLd([{ size: 16, stride: 4 }, { size: 8, stride: 1 }], 8)).toBeUndefined(); // overlapping rows
  });

  it('both GEMMs are cuBLASLt launches over the Split parts in place (lda = ldb = 3D), precision high, alpha on the scores', () => {
    const { after } = onnxCase(64, 512);
    const plan = kernelPlan(after, planMemory(after));
    expect(plan.pending).toEqual({});
    const [scores, out] = actGemms(after);
    expect(scores).toMatchObject({ precision: 'high', m: 64, n: 64, k: 512, transB: true, bias: false, act: { lda: 1536, ldb: 1536 } });
    expect(scores.act!.alpha).toBeCloseTo(1 / Math.sqrt(512), 3);
    expect(out).toMatchObject({ m: 64, n: 512, k: 64, transB: false, act: { alpha: 1, lda: 64, ldb: 1536 } });
    // q, k, v: the Split parts, 512 elements apart in the same buffer.
    const [q, k] = scores.args, v = out.args[1];
    expect(scores.args.every((a) => a.where === 'arena') && out.args.every((a) => a.where === 'arena')).toBe(true);
    expect([k.offset! - q.offset!, v.offset! - q.offset!]).toEqual([1024, 2048]);
  });

  const values = (g: Graph, l: GemmLaunch) => Object.fromEntries(l.args.map((a) => {
    const t = g.types.get(a.value) as unknown as { dtype: string; shape: number[] };
    return [a.value, `${t.dtype}[${t.shape}]`];
  }));

  it('specFor: an arena B with its layout from transB and types from the graph, alpha and row strides; never a weight lookup', () => {
    const { after } = onnxCase(64, 384);
    const [scores, out] = actGemms(after);
    const noWeights = () => { throw new Error('an activation GEMM must not look up weights'); };
    expect(specFor(scores, values(after, scores), noWeights)).toMatchObject({
      precision: 'high', m: 64, n: 64, k: 384, layout: 'nk', xType: 'bfloat16', wType: 'bfloat16', yType: 'float32', act: { lda: 1152, ldb: 1152 },
    });
    expect(specFor(out, values(after, out), noWeights)).toMatchObject({ m: 64, n: 384, k: 64, layout: 'kn', xType: 'bfloat16', wType: 'bfloat16', yType: 'bfloat16', act: { alpha: 1, lda: 64, ldb: 1152 } });
  });

  it('specFor refuses malformed activation GEMMs by name', () => {
    const { after } = onnxCase(64, 384);
    const [scores] = actGemms(after);
    const v = values(after, scores);
    const none = () => undefined;
    expect(() => specFor({ ...scores, k: 256 }, v, none)).toThrow(/GEMM '.*\/scores': expected X \[64, 256\], W nk for N=64/);
    expect(() => specFor({ ...scores, act: { ...scores.act!, lda: 100 } }, v, none)).toThrow(/expected row strides of at least 384 \(X\) and 384 \(W\), found 100 and 1152/);
    expect(() => specFor({ ...scores, args: [scores.args[0], { ...scores.args[1], where: 'weight' }, scores.args[2]] }, v, none)).toThrow(/expected an activation as B/);
    expect(() => specFor({ ...scores, bias: true }, v, none)).toThrow(/expected an activation GEMM of precision high, no bias, 3 arguments/);
    const [x, w] = scores.args.map((a) => a.value);
    expect(() => specFor(scores, { ...v, [w]: v[w].replace('bfloat16', 'float16') }, none)).toThrow(/expected X and W of one type, found bfloat16 and float16/);
    expect(() => specFor(scores, { ...v, [x]: v[x].replace('bfloat16', 'float8e4m3fn'), [w]: v[w].replace('bfloat16', 'float8e4m3fn') }, none)).toThrow(/expected X of a type cuBLASLt reads here/);
  });
});

describe('full-size VAE decoders (1024x1024): the mid-block attention has kernels', () => {
  const optimise = (m: string) => runPipeline(inferTypes(importOnnx(fullModelPath(m)).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;

  it.each([['flux2_vae_decoder', 512, 1536], ['qwen_image_vae_decoder', 384, 1152]])('%s: no pending launch; scores GEMM, softmax row kernel, output GEMM over 16384 tokens (head dim %i, q/k/v rows %i apart); S and P reused', (m, d, ld) => {
    const g = optimise(m);
    const memory = planMemory(g);
    const plan = kernelPlan(g, memory);
    expect(plan.pending).toEqual({});
    expect(plan.launches.filter((l) => l.kind === 'pending')).toEqual([]);
    const [scores, out] = plan.launches.filter((l): l is GemmLaunch => l.kind === 'gemm' && !!l.act);
    expect(scores).toMatchObject({ m: 16384, n: 16384, k: d, transB: true, act: { lda: ld, ldb: ld } });
    expect(out).toMatchObject({ m: 16384, n: d, k: 16384, transB: false, act: { alpha: 1, lda: 16384, ldb: ld } });
    const softmax = plan.launches[plan.launches.indexOf(scores) + 1];
    expect(softmax).toMatchObject({ kind: 'kernel', args: [{ value: scores.node }, { value: out.args[0].value }] });
    const kernel = plan.kernels.find((k) => softmax.kind === 'kernel' && k.name === softmax.kernel)!;
    expect(kernel).toMatchObject({ hot: true, block: 512 });
    // S (1 GiB fp32) and P (512 MiB bf16) are live together; the arena reuses S's bytes afterwards
    // (the attention's output lands in them) and is the max-live bound exactly.
    const buffer = (v: string) => memory.buffers.find((b) => b.value === memory.location.get(v))!;
    expect([buffer(scores.node).bytes, buffer(out.args[0].value).bytes]).toEqual([2 ** 30, 2 ** 29]);
    const s = buffer(scores.node), y = buffer(out.node);
    expect(y.offset < s.offset + s.bytes && s.offset < y.offset + y.bytes).toBe(true);
    expect(memory.arenaBytes).toBe(memory.maxLiveBytes);
    expect(memory.arenaBytes).toBeLessThan(1.7e9);
  }, 60_000);
});
