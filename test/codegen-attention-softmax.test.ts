/**
 * The attention kernel's softmax choices (compiler/codegen/attention.ts, templates/attention.cu.njk):
 * 192-key tiles where 192 divides the padded kv length (two K scale blocks a tile with qk='fp8'),
 * row sums by the P·V MMA (8 rows of ones after V's channel rows in shared memory, an N = DP + 8
 * wgmma), a share of the exponentials by polynomial, the reduction trees, the refusals, and the nvcc
 * build of every variant for sm_90a and sm_100a without spills. Numerics on the GPU:
 * test/gpu/attention.ts (cases flux2_single_fp8_*, qwen_image_mask_fp8_*, tiny_*).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { type AttentionDescriptor, attentionDescriptor, attentionSharedBytes, renderAttention, treeLines } from '../compiler/codegen/attention.ts';
import { renderUnit } from '../compiler/codegen/render.ts';
import { FULL_MODELS, fullModelPath } from '../compiler/full-models.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { ops } from './helpers/attention.ts';

function graphOf(file: string, shapes: Record<string, number> = {}, attention: 'auto' | 'bf16' | 'fp8' | 'fp8-qk' | 'fp8-pv' | 'int8' | 'int8-pv' = 'auto'): Graph {
  const passes = pipelineFor(insertQuantize({ ...defaultPolicy('fp8'), attention }));
  return runPipeline(inferTypes(specialise(importOnnx(file).graph, shapes)), { passes }).graph;
}
const descriptors = (g: Graph) => ops(g, 'PackedAttention').map((n) => attentionDescriptor(g, n));
const full = (m: string, attention: 'auto' | 'fp8-qk' | 'fp8-pv' = 'auto') => graphOf(fullModelPath(m), FULL_MODELS[m], attention);

describe('reduction trees', () => {
  it('reduce a[from..from+n) into a[from] for every n up to 24, two or three operands a statement, in as many dependent steps as levels of that arity', () => {
    for (const arity of [2, 3]) for (let n = 1; n <= 24; n++) for (const from of [0, 8]) {
      const a = Array.from({ length: 40 }, (_, i) => ((i * 7919) % 41) - 20);
      const depth = a.map(() => 0);
      for (const line of treeLines((...xs) => `max(${xs.join(', ')})`, 'r', from, n, arity)) {
        const m = /^r\[(\d+)\] = max\((r\[\d+\](?:, r\[\d+\])*)\);$/.exec(line)!;
        const d = Number(m[1]), xs = [...m[2].matchAll(/\d+/g)].map((x) => Number(x[0]));
        expect(xs.length).toBeGreaterThan(1);
        expect(xs.length).toBeLessThanOrEqual(arity);
        expect(d).toBe(xs[0]);
        for (const x of xs.slice(1)) expect(x).toBeGreaterThan(d);
        for (const x of xs) expect(x).toBeLessThan(from + n);
        a[d] = Math.max(...xs.map((x) => a[x]));
        depth[d] = Math.max(...xs.map((x) => depth[x])) + 1;
      }
      const want = Math.max(...Array.from({ length: n }, (_, i) => ((from + i) * 7919 % 41) - 20));
      expect(a[from], `n ${n}`).toBe(want);
      let levels = 0;
      for (let m = n; m > 1; m = Math.ceil(m / arity)) levels++;
      expect(depth[from], `arity ${arity}, n ${n}`).toBe(levels);
    }
  });
});

describe('softmax choices of the descriptors', () => {
  it('tiny models: bf16 P·V sums l by the MMA; the bidirectional ones 192-key tiles with poly4 in the full ping-pong (kv 288 / 280 pad to 384 = 2 x 192, the last tile partial), the causal text encoders serial 128-key tiles; FP8 P·V keeps fp32 sums', () => {
    for (const m of ['flux2', 'qwen_image']) {
      for (const d of descriptors(graphOf(join(tinyDir(m), 'model.onnx')))) {
        expect(d.seqKv % 192, m).not.toBe(0);
        expect([d.lsum, d.exp, d.polyEvery, d.bn, d.schedule], m).toEqual(['mma', 'poly', 4, 192, 'pingpong']);
      }
    }
    for (const d of descriptors(graphOf(join(tinyDir('mistral_text_encoder'), 'model.onnx')))) expect([d.lsum, d.exp, d.bn, d.schedule]).toEqual(['mma', undefined, undefined, 'serial']);
    const g = graphOf(join(tinyDir('flux2'), 'model.onnx'));
    const pv = ops(g, 'PackedAttention')[0];
    Object.assign(pv.attrs, { qk: 'fp8', pv: 'fp8' });
    // FP8 P·V: fp32 sums, MUFU exponentials; its key tile is pvTile's (288 keys pad to 384 = 2 x 192).
    expect([attentionDescriptor(g, pv).lsum, attentionDescriptor(g, pv).exp, attentionDescriptor(g, pv).bn]).toEqual([undefined, undefined, 192]);
  });

  it('the default policy: s8 Q·Kᵀ and P·V on 8-bit integers in every transformer block ("fp8-pv": e4m3 both), two P arrays in the full ping-pong, every exponential on the MUFU, fp32 sums', () => {
    for (const [m, blocks, bn] of [['flux2_dev', 56, 192], ['qwen_image', 60, 128]] as const) {
      for (const [attention, code] of [['auto', 'int8'], ['fp8-pv', 'fp8']] as const) {
        const ds = descriptors(full(m, attention));
        expect(ds.length, m).toBe(blocks);
        for (const d of ds) expect([d.qk, d.pv, d.pvAccumulate, d.bn, d.pBuffers, d.schedule, d.lsum, d.exp, d.lazyRescale], `${m} ${attention}`).toEqual([code, code, 'direct', bn, 2, 'pingpong', undefined, undefined, true]);
      }
    }
  });

  it('s8 Q·Kᵀ (policy "int8"): 128-key tiles with two P arrays, MMA sums, every exponential on the MUFU, in both transformers', () => {
    for (const [m, blocks] of [['flux2_dev', 56], ['qwen_image', 60]] as const) {
      const ds = descriptors(graphOf(fullModelPath(m), FULL_MODELS[m], 'int8'));
      expect(ds.length, m).toBe(blocks);
      for (const d of ds) expect([d.qk, d.pv, d.bn, d.pBuffers, d.lsum, d.exp, d.stages, d.schedule, d.lazyRescale], m).toEqual(['int8', undefined, 128, 2, 'mma', undefined, 3, 'pingpong', undefined]);
    }
  });

  it('s8 Q·Kᵀ over every key (Flux.2: no mask, whole tiles) takes its row maxima over the s32 scores and converts each score where its exponential reads it; under a key mask (Qwen-Image) the scores are converted first', () => {
    // Row 0's first 64-key region: its 16 s32 scores, reduced in three-input steps.
    const converted = 'S[i] = dca_s32_f32(S32[i]);', intMaxima = 'int v0_0[16] = { (int)S32[0], (int)S32[1], (int)S32[4], (int)S32[5],';
    for (const attention of ['int8-pv', 'int8'] as const) {
      const [flux] = descriptors(graphOf(fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, attention));
      const k = renderAttention(flux).source;
      expect([k.includes(intMaxima), k.includes(converted)], attention).toEqual([true, false]);
      expect(k.match(/dca_exp2\(ARG\(dca_s32_f32\(S32\[4 \* g(?: \+ [123])?\]\), g, [01], e[01]\)\)/g)?.length, attention).toBeGreaterThanOrEqual(4);
      const [qwen] = descriptors(graphOf(fullModelPath('qwen_image'), FULL_MODELS.qwen_image, attention));
      const q = renderAttention(qwen).source;
      expect([!!qwen.mask, q.includes(intMaxima), q.includes(converted), q.includes('dca_s32_f32(S32[4 * g')], attention).toEqual([true, false, true, false]);
    }
  });

  it('the integer P·V (policy "int8-pv") in 192-key tiles and FP8 P·V under a key mask hand the tensor cores over once the tile\'s maxima are known: one named arrive a turn, after the maxima\'s shuffles and before the exponentials; the integer P·V in 128-key tiles and unmasked FP8 P·V right after the issue', () => {
    const arrivesAfter = (k: string, marker: RegExp) => {
      const turn = k.slice(k.indexOf('dca_named_sync(1 + wg, 256);', k.indexOf('for (int j = 1; j + 1 < nTiles; j += 2)')));
      const body = turn.slice(0, turn.indexOf('dca_named_sync(1 + wg, 256);', 40));
      expect(body.match(/dca_named_arrive\(2 - wg, 256\)/g)?.length).toBe(1);
      const at = body.indexOf('dca_named_arrive(2 - wg, 256)');
      expect(at).toBeGreaterThan(body.search(marker));
      return body.slice(at);
    };
    // Flux.2: 4608 keys, 192-key tiles; Qwen-Image's export: 4096 + 256 keys, 128-key tiles.
    for (const [m, blocks, bn, handOver] of [['flux2_dev', 56, 192, 'max'], ['qwen_image', 60, 128, undefined]] as const) {
      const ds = descriptors(graphOf(fullModelPath(m), FULL_MODELS[m], 'int8-pv'));
      expect(ds.length, m).toBe(blocks);
      for (const d of ds) expect([d.qk, d.pv, d.schedule, d.bn, d.handOver], m).toEqual(['int8', 'int8', 'pingpong', bn, handOver]);
      const k = renderAttention(ds[0]).source;
      if (handOver) expect(arrivesAfter(k, /mx1 = fmaxf\(mx1, __shfl_xor_sync\(0xffffffffu, mx1, 2\)\);/).indexOf('dca_exp2(ARG(')).toBeGreaterThan(0);
      else expect(arrivesAfter(k, /dca_wgmma_commit\(\);\s+\{\s+\/\/ O \+= P·V/).indexOf('dca_wgmma_wait<1>()')).toBeGreaterThan(0);
      // "auto" (the default) takes the same kernels; "fp8-pv" (FP8 P·V): Flux.2 unmasked, Qwen-Image under its text's key mask.
      expect(descriptors(full(m)).map((d) => renderAttention(d).name), m).toEqual(ds.map((d) => renderAttention(d).name));
      const fp8 = descriptors(full(m, 'fp8-pv'))[0];
      expect([fp8.pv, !!fp8.mask, fp8.handOver], m).toEqual(['fp8', m === 'qwen_image', m === 'qwen_image' ? 'max' : undefined]);
      const f = renderAttention(fp8).source;
      if (fp8.handOver) expect(arrivesAfter(f, /mx1 = fmaxf\(mx1, __shfl_xor_sync\(0xffffffffu, mx1, 2\)\);/).indexOf('dca_exp2(ARG(')).toBeGreaterThan(0);
      else expect(arrivesAfter(f, /dca_wgmma_commit\(\);\s+\{\s+\/\/ O \+= P·V/).indexOf('dca_wgmma_wait<1>()')).toBeGreaterThan(0);
    }
  });

  it('FP8 Q·Kᵀ with bf16 P·V (policy "fp8-qk"): Flux.2 192-key tiles (4608 = 24 x 192), two stages in 227 KB, poly4; Qwen-Image (4352 keys, masked text): 128-key tiles, MUFU only; both MMA sums', () => {
    const flux = descriptors(full('flux2_dev', 'fp8-qk'));
    expect(flux.length).toBe(56);
    for (const d of flux) expect([d.qk, d.bn, d.lsum, d.exp, d.polyEvery, d.stages, d.schedule]).toEqual(['fp8', 192, 'mma', 'poly', 4, 2, 'pingpong']);
    // FP8 Q·Kᵀ in 192-key tiles keeps the eager rescale (a stale max measured slower there); the others take it.
    for (const d of flux) expect([d.lazyRescale, d.rescaleSlack]).toEqual([undefined, undefined]);
    expect(attentionSharedBytes(flux[0]).total).toBeLessThanOrEqual(232448);
    expect(attentionSharedBytes({ ...flux[0], stages: 3 }).total).toBeGreaterThan(232448);
    // V: 3 blocks of 64 keys, each 128 channel rows + 8 ones rows of 128 bytes.
    expect(attentionSharedBytes(flux[0]).v).toBe(3 * 136 * 128);
    const qwen = descriptors(full('qwen_image', 'fp8-qk'));
    for (const d of qwen) expect([d.bn, d.lsum, d.exp, d.schedule, d.mask?.keys, d.lazyRescale, d.rescaleSlack]).toEqual([undefined, 'mma', undefined, 'pingpong', 256, true, 8]);
    // bf16 Q·Kᵀ (rows of 256 bytes): two stages of 192 keys do not fit, 128-key tiles (and, with
    // the ones rows, two stages of those).
    const bf16 = descriptors(graphOf(fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'bf16'))[0];
    expect([bf16.qk, bf16.bn, bf16.stages, bf16.lazyRescale, bf16.rescaleSlack]).toEqual(['bf16', undefined, 2, true, 8]);
    expect(() => renderAttention({ ...bf16, bn: 192, stages: 2 })).toThrow(/at most 232448 bytes of shared memory/);
  });
});

describe('softmax rendering', () => {
  it('a stale running max: kept until a tile exceeds it by the slack, O rescaled in a warp-uniform branch; only with bf16 P·V', () => {
    const g = graphOf(join(tinyDir('flux2'), 'model.onnx'), {}, 'fp8');
    const d: AttentionDescriptor = { ...descriptors(g)[0], bn: 128, exp: undefined, polyEvery: undefined, stages: 3 };
    const slack = renderAttention({ ...d, lazyRescale: true, rescaleSlack: 8 }).source;
    expect(slack).toMatch(/const float mn0 = mx0 > m0 \+ 8\.f \? mx0 : m0, mn1 = mx1 > m1 \+ 8\.f \? mx1 : m1;/);
    expect(slack).toMatch(/if \(!__all_sync\(0xffffffffu, alpha0 == 1\.f && alpha1 == 1\.f\)\)/);
    expect(renderAttention({ ...d, lazyRescale: undefined, rescaleSlack: undefined }).source).toMatch(/const float mn0 = fmaxf\(m0, mx0\)/);
    expect(() => renderAttention({ ...d, rescaleSlack: 20 })).toThrow(/rescale slack of 0-16.*20/);
    expect(() => renderAttention({ ...d, qk: 'fp8', pv: 'fp8', lsum: undefined, rescaleSlack: 8 })).toThrow(/rescale slack of 0-16 \(log2 units\) with bf16 P·V.*pv='fp8'/);
  });

  const g = graphOf(join(tinyDir('flux2'), 'model.onnx'), {}, 'fp8');
  // The 128-key MUFU kernel (the tiny graph's own descriptor takes 192-key tiles: pinned here).
  const base: AttentionDescriptor = { ...descriptors(g)[0], bn: 128, exp: undefined, polyEvery: undefined, stages: 3 };
  // A Flux.2-like shape for the 192-key tile (the tiny graph's buffers are not read by rendering).
  const wide: AttentionDescriptor = { ...base, seqQ: 4608, seqKv: 4608, heads: 48, kvHeads: 48, schedule: 'pingpong', bn: 192, stages: 2 };

  it('MMA row sums: V tiles of DP + 8 rows, a wgmma N = DP + 8, l read from the accumulator; the copies expect only the channel rows', () => {
    const k = renderAttention(base).source;
    expect(base.dp).toBe(128);
    expect(k).toMatch(/wgmma\.mma_async\.sync\.aligned\.m64n136k16\.f32\.bf16\.bf16/);
    expect(k).toMatch(/constexpr int V_ROWS = DP \+ 8/);
    expect(k).toMatch(/l0 = O\[DP \/ 2\];/);
    expect(k).toMatch(/dca_mbar_expect_tx\(VFULL\(st\), 2 \* DP \* 128\)/);
    expect(k).toMatch(/st\.shared\.v4\.u32 \[%0\], \{ %1, %1, %1, %1 \};" :: "r"\(at\), "r"\(0x3F803F80u\)/);
    const alu = renderAttention({ ...base, lsum: 'alu' }).source;
    expect(alu).toMatch(/m64n128k16\.f32\.bf16\.bf16/);
    expect(alu).toMatch(/constexpr int V_ROWS = DP \+ 0/);
    expect(attentionSharedBytes({ ...base, lsum: 'alu' }).v).toBe(2 * 128 * 128);
    expect(attentionSharedBytes(base).v).toBe(2 * 136 * 128);
  });

  it('192-key tiles: an N = 192 e4m3 score MMA, the K scale split by tile parity, 3 V blocks of 64 keys', () => {
    const k = renderAttention(wide).source;
    expect(k).toMatch(/m64n192k32\.f32\.e4m3\.e4m3/);
    expect(k).toMatch(/constexpr int BM = 128, BN = 192/);
    expect(k).toMatch(/split_ = \(\(j0 \+ j\) & 1\) \? 8 : 16/); // the tile's index in the unit's keys (j0: a last-wave piece's first tile)
    expect(k).toMatch(/dca_mbar_expect_tx\(VFULL\(st\), 3 \* DP \* 128\)/);
    // K's block scales are still per 128 keys: 36 blocks a head, 24 tiles.
    expect(k).toMatch(/ksHead = ks \+ \(long long\)\(b \* 48 \+ hk\) \* 36;/);
    expect(k).toMatch(/const int nTiles = 24;/);
  });

  it('polynomial exponentials for every 4th column group', () => {
    const k = renderAttention({ ...base, exp: 'poly', polyEvery: 4 }).source;
    expect(k).toMatch(/if \(g % 4 == 3\) \{[\s\S]*dca_exp2_poly/);
    expect(renderAttention(base).source).not.toMatch(/dca_exp2_poly\(ARG/);
  });

  it('refuses tiles other than 128 and 192, 192 where it does not divide the keys or with causality, MMA sums with FP8 P·V', () => {
    expect(() => renderAttention({ ...wide, bn: 256 })).toThrow(/key tiles of 128 or 192/);
    expect(() => renderAttention({ ...wide, seqKv: 4352 })).toThrow(/a kv length 192 divides/);
    expect(() => renderAttention({ ...wide, causal: true })).toThrow(/no causality/);
    expect(() => renderAttention({ ...base, pv: 'fp8', lsum: 'mma' })).toThrow(/MMA row sums with bf16 P·V/);
  });

  it.each(['h100', 'b200'] as const)('every variant builds for %s without spills', async (target) => {
    const variants: AttentionDescriptor[] = [base, { ...base, lsum: 'alu' }, { ...base, exp: 'poly', polyEvery: 2 }, wide, { ...wide, lsum: 'alu' }, { ...wide, exp: 'poly', polyEvery: 4 }];
    const list = variants.map((d) => { const { args: _, ...k } = renderAttention(d); return k; });
    const report = await buildKernels([{ name: `softmax_${target}`, source: renderUnit(list), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    for (const k of list) {
      const f = report.units[0].functions.find((x) => x.name === k.name);
      expect(f, k.name).toBeDefined();
      expect([f!.spillStoreBytes, f!.spillLoadBytes], k.name).toEqual([0, 0]);
    }
  }, 240_000);
});
