/**
 * The attention's split last wave (compiler/codegen/attention.ts tailSplit / attentionLaunches,
 * templates/attention.cu.njk tail mode; opt-in: the descriptor's sms): the rule that picks the items and their key ranges, pinned
 * on the real shapes and checked to cover every key tile exactly; the launches the descriptors give
 * (whole items, then clusters of CTAs for the tail; causality and sms 0 keep one launch); and the
 * combine's maths as the template does it, on a CPU model: per range the kernel's online softmax
 * (log2 units, running max m, sum l, unnormalised O), merged with w_s = 2^(m_s - max m) (0 for a
 * range of masked keys only) and O = Σ w_s O_s / Σ w_s l_s (0 where the sum is 0), against the
 * whole row's softmax. Numerics on the GPU: test/gpu/attention.ts (the *_tail cases and the forced
 * splits beside the same inputs in one launch). The nvcc build of the tail kernels for both
 * targets without spills: test/codegen-attention.test.ts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type AttentionDescriptor, H100_SMS, attentionDescriptor, attentionLaunches, attentionTail, tailSplit } from '../compiler/codegen/attention.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { rebatch } from '../compiler/ir/rebatch.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { SHARED_FULL, tinyDir } from './helpers/fixtures.ts';
import { ops } from './helpers/attention.ts';

function descriptors(file: string, shapes: Record<string, number> = {}, batch = 1, sms = 0): AttentionDescriptor[] {
  let g: Graph = specialise(importOnnx(file).graph, shapes);
  if (batch > 1) g = rebatch(g, batch);
  g = runPipeline(inferTypes(g), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
  return ops(g, 'PackedAttention').map((n) => attentionDescriptor(g, n, sms));
}
const present = existsSync(join(SHARED_FULL, 'flux2_dev', 'model.onnx'));

describe('the split rule', () => {
  it('pins the real shapes: Flux.2 12 x 8 CTAs of 3 tiles, Qwen-Image batch 2 48 x 2 of 17, batch 1 24 x 5 of 7', () => {
    expect(tailSplit(36 * 48, 24, 132)).toEqual({ first: 1716, items: 12, splits: 8, tilesPer: 3 });
    expect(tailSplit(34 * 48, 34, 132)).toEqual({ first: 1584, items: 48, splits: 2, tilesPer: 17 });
    expect(tailSplit(34 * 24, 34, 132)).toEqual({ first: 792, items: 24, splits: 5, tilesPer: 7 });
    // No partial wave, a tail of more than half a wave, one key tile, no SM count: no split.
    expect(tailSplit(12 * 132, 24, 132)).toBeUndefined();
    expect(tailSplit(132 + 67, 24, 132)).toBeUndefined();
    expect(tailSplit(12, 1, 132)).toBeUndefined();
    expect(tailSplit(1728, 24, 0)).toBeUndefined();
    // A grid of fewer items than SMs is all tail.
    expect(tailSplit(12, 3, 132)).toEqual({ first: 0, items: 12, splits: 3, tilesPer: 1 });
    expect(H100_SMS).toBe(132);
  });

  it('covers every key tile once, no range empty, at most 8 CTAs an item, the tail within one wave', () => {
    let splitCount = 0;
    for (const sms of [132, 148, 7]) for (let items = 1; items < 3 * sms; items += 1) for (const kvTiles of [1, 2, 3, 5, 17, 24, 34, 35]) {
      const t = tailSplit(items, kvTiles, sms);
      if (!t) continue;
      splitCount++;
      expect(t.first + t.items).toBe(items);
      expect(t.items).toBe(items % sms);
      expect(t.splits).toBeGreaterThanOrEqual(2);
      expect(t.splits).toBeLessThanOrEqual(8);
      expect(t.items * t.splits).toBeLessThanOrEqual(sms);
      // Ranges [s·L, min((s+1)·L, kvTiles)) as the template takes them.
      const covered: number[] = [];
      for (let s = 0; s < t.splits; s++) {
        const n = Math.min(t.tilesPer, kvTiles - s * t.tilesPer);
        expect(n, JSON.stringify({ items, kvTiles, sms, t })).toBeGreaterThan(0);
        for (let j = 0; j < n; j++) covered.push(s * t.tilesPer + j);
      }
      expect(covered).toEqual(Array.from({ length: kvTiles }, (_, j) => j));
    }
    expect(splitCount).toBeGreaterThan(500);
  });
});

describe('launches of the descriptors', () => {
  it('off unless asked (sms); tiny models with sms 132: 12 items, all in the tail (one launch of 3-CTA clusters); causality or sms 0: one launch of whole items', () => {
    const [plain] = descriptors(join(tinyDir('flux2'), 'model.onnx'));
    expect(plain.sms).toBeUndefined();
    expect(attentionLaunches(plain).map((k) => k.grid)).toEqual([12]);
    const [flux] = descriptors(join(tinyDir('flux2'), 'model.onnx'), {}, 1, H100_SMS);
    expect(flux.sms).toBe(132);
    const list = attentionLaunches(flux);
    expect(list.map((k) => [k.name.split('_')[0], k.grid])).toEqual([['attntail', 36]]);
    expect(list[0].source).toMatch(/__cluster_dims__\(3, 1, 1\) __launch_bounds__\(384, 1\)/);
    const whole = attentionLaunches({ ...flux, sms: 0 });
    expect(whole.map((k) => [k.name.split('_')[0], k.grid])).toEqual([['attn', 12]]);
    expect(whole[0].source).not.toMatch(/__cluster_dims__/);
    expect(whole[0].args).toEqual(list[0].args);
    // The causal flag keeps one launch; the text encoders' causality comes as a per-query mask,
    // split like any mask (ranges past a query's keys: m = -inf, ignored by the combine).
    expect(attentionTail({ ...flux, causal: true })).toBeUndefined();
    expect(attentionLaunches({ ...flux, causal: true }).map((k) => k.grid)).toEqual([12]);
    const [te] = descriptors(join(tinyDir('mistral_text_encoder'), 'model.onnx'), {}, 1, H100_SMS);
    expect([te.causal, te.mask!.strides[2] !== 0, te.schedule]).toEqual([false, true, 'serial']);
    expect(attentionTail(te)).toBeUndefined(); // one key tile
    expect(attentionTail({ ...te, seqQ: 512, seqKv: 512 })).toEqual({ first: 0, items: 16, splits: 4, tilesPer: 1 });
  });

  it.runIf(present)('Flux.2 and Qwen-Image at batch 2: whole items then the tail, same arguments and shared memory', () => {
    const flux = descriptors(join(SHARED_FULL, 'flux2_dev', 'model.onnx'), { img_tokens: 4096, txt_tokens: 512 }, 1, H100_SMS);
    const qwen = descriptors(join(SHARED_FULL, 'qwen_image', 'model.onnx'), {}, 2, H100_SMS);
    for (const [d, whole, tail, splits] of [[flux[0], 1716, 96, 8], [qwen[0], 1584, 96, 2]] as const) {
      const [a, b] = attentionLaunches(d);
      expect([a.grid, b.grid]).toEqual([whole, tail]);
      expect(b.source).toContain(`__cluster_dims__(${splits}, 1, 1)`);
      expect(b.args).toEqual(a.args);
      expect(b.sharedBytes).toBe(a.sharedBytes);
    }
  }, 120_000);
});

// ---- the combine's maths on a CPU model ------------------------------------------------------------

/** A range's partial as the kernel leaves it: tiles of `bn` keys, online softmax in log2 units. */
function partial(x: number[], v: number[][], k0: number, k1: number, bn: number, offset = 0) {
  let m = -Infinity, l = 0;
  let o = v[0].map(() => 0);
  for (let t = k0; t < k1; t += bn) {
    const keys = Array.from({ length: Math.min(bn, k1 - t) }, (_, i) => t + i);
    const mn = Math.max(m, ...keys.map((k) => x[k]));
    const base = mn === -Infinity ? 0 : mn;
    const alpha = 2 ** (m - base);
    m = mn;
    o = o.map((y) => y * alpha);
    l *= alpha;
    for (const k of keys) {
      const p = 2 ** (x[k] - base + offset); // offset 8: pv='fp8''s P' = 256·P
      l += p;
      o = o.map((y, c) => y + p * v[k][c]);
    }
  }
  return { m, l, o };
}

/** The template's merge of the cluster's partials for one row. */
function combine(parts: { m: number; l: number; o: number[] }[]): number[] {
  const mx = Math.max(...parts.map((p) => p.m));
  const w = parts.map((p) => (p.m === -Infinity ? 0 : 2 ** (p.m - mx)));
  const lw = parts.reduce((s, p, i) => s + w[i] * p.l, 0);
  const inv = lw > 0 ? 1 / lw : 0;
  return parts[0].o.map((_, c) => parts.reduce((s, p, i) => (w[i] === 0 ? s : s + w[i] * p.o[c]), 0) * inv);
}

/** The whole row's softmax (log2 units): Σ 2^(x - max) v / Σ 2^(x - max); 0 where every key is masked. */
function softmaxRow(x: number[], v: number[][]): number[] {
  const mx = Math.max(...x);
  if (mx === -Infinity) return v[0].map(() => 0);
  const p = x.map((s) => 2 ** (s - mx)), l = p.reduce((a, b) => a + b, 0);
  return v[0].map((_, c) => p.reduce((s, pk, k) => s + pk * v[k][c], 0) / l);
}

function split(x: number[], v: number[][], bn: number, tilesPer: number, offset = 0) {
  const tiles = Math.ceil(x.length / bn), parts = [];
  for (let s = 0; s * tilesPer < tiles; s++) parts.push(partial(x, v, s * tilesPer * bn, Math.min(x.length, (s + 1) * tilesPer * bn), bn, offset));
  return parts;
}

describe('the combine (CPU model of the template) against the whole row', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((y, i) => Math.abs(y - b[i])));
  const keys = 200, channels = 4, bn = 16;
  const v = Array.from({ length: keys }, () => Array.from({ length: channels }, () => rand() * 3));

  it('matches the softmax of every key for each range length (split 1..13 tiles), with or without the 2^8 of FP8 P', () => {
    const x = Array.from({ length: keys }, () => rand() * 12);
    const want = softmaxRow(x, v);
    for (let tilesPer = 1; tilesPer <= 13; tilesPer++) for (const offset of [0, 8]) {
      expect(maxDiff(combine(split(x, v, bn, tilesPer, offset)), want), `tilesPer ${tilesPer}`).toBeLessThan(1e-12);
    }
  });

  it('ignores a range of masked keys only (m = -inf, l = 0) and gives 0 for a fully masked row', () => {
    const x = Array.from({ length: keys }, (_, k) => (k < 48 || (k >= 96 && k < 112) ? -Infinity : rand() * 12));
    const parts = split(x, v, bn, 3);
    expect(parts[0]).toMatchObject({ m: -Infinity, l: 0 });
    expect(parts[0].o.every((y) => y === 0)).toBe(true);
    const got = combine(parts);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxDiff(got, softmaxRow(x, v))).toBeLessThan(1e-12);
    const none = combine(split(x.map(() => -Infinity), v, bn, 3));
    expect(none).toEqual(v[0].map(() => 0));
  });

  it('keeps the uniform average of a row masked by huge finite values only (the clamped -3.4e38), as the whole row does', () => {
    const x = Array.from({ length: keys }, () => -3.4e38);
    const mean = v[0].map((_, c) => v.reduce((s, r) => s + r[c], 0) / keys);
    expect(maxDiff(softmaxRow(x, v), mean)).toBeLessThan(1e-12);
    expect(maxDiff(combine(split(x, v, bn, 4)), mean)).toBeLessThan(1e-12);
  });

  it('merges ranges whose maxima are far apart without overflow (only 2^(m_s - max) <= 1 scales)', () => {
    const x = Array.from({ length: keys }, (_, k) => (k < 64 ? rand() * 4 - 900 : rand() * 4 + 900));
    const got = combine(split(x, v, bn, 2));
    expect(got.every(Number.isFinite)).toBe(true);
    expect(maxDiff(got, softmaxRow(x, v))).toBeLessThan(1e-12);
  });
});
