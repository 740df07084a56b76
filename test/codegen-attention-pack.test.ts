/**
 * The attention pack's launch choices on the CPU machine (nvcc present, no GPU): e4m3 values parked
 * in shared memory (`park`), the per-feature floats (deferred-GEMM scales, biases, norm weights)
 * staged in the order the lanes read them, the full-size defaults and their register budget (3 CTAs
 * of 256 threads a SM on sm_90a, no spills). The pack's bytes are compared with the previous kernel's
 * on the GPU (test/gpu/attention-pack.ts).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { type PackDescriptor, packDescriptor, renderPack } from '../compiler/codegen/attention.ts';
import { deferDequant } from '../compiler/codegen/plan.ts';
import { renderUnit } from '../compiler/codegen/render.ts';
import { FULL_MODELS, fullModelPath } from '../compiler/full-models.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { ops } from './helpers/attention.ts';
import { h100Graph } from './helpers/h100-graph.ts';

function packs(file: string, shapes: Record<string, number> = {}): PackDescriptor[] {
  const passes = pipelineFor(insertQuantize({ ...defaultPolicy('fp8'), attention: 'fp8' }));
  const g = runPipeline(inferTypes(specialise(importOnnx(file).graph, shapes)), { passes }).graph;
  const deferred = deferDequant(g);
  return ops(g, 'AttentionPack').map((n) => packDescriptor(g, n, deferred));
}

/** The packs as `npx compile --target h100` emits them (`cfg`: Qwen-Image's pipeline module, 32 text tokens and batch 2). */
function production(file: string, shapes: Record<string, number>, cfg = false): PackDescriptor[] {
  const { graph, deferred } = h100Graph(file, shapes, { cfg });
  return ops(graph, 'AttentionPack').map((n) => packDescriptor(graph, n, deferred));
}

/** The tiny Flux.2 pack with its GEMM outputs typed bf16 (as the full-size models'), so its rows can be staged. */
function tinyStaged(): PackDescriptor {
  const d = packs(join(tinyDir('flux2'), 'model.onnx'))[0];
  const sources = new Set(d.segments.map((s) => s.x.param));
  return { ...d, inputs: d.inputs.map((x, i) => (sources.has(i) ? { ...x, type: '__nv_bfloat16' } : x)), stage: true, minBlocks: 2 };
}

describe('attention pack', () => {
  it('parks e4m3 values as bf16 in the lane\'s staged chunk and V\'s rows there too (half the shared memory); refused where rows are not staged or Q/K are bf16', () => {
    const d = tinyStaged();
    expect(d.qk).toBe('fp8');
    const kept = renderPack({ ...d, park: false }), parked = renderPack({ ...d, park: true });
    // Kept: V's tile of 128 rows of D + 2 bf16 beside the staged rows; parked: the staged rows alone.
    expect(kept.sharedBytes).toBe(128 * (2 * d.headDim + 2) * 2);
    expect(parked.sharedBytes).toBe(128 * d.headDim * 2);
    expect(parked.name).not.toBe(kept.name);
    // Parked: each row's values rounded to bf16 pairs once, their magnitudes' max taken on the pairs, the pairs stored.
    expect(parked.source).toMatch(/const __nv_bfloat162 p2 = __floats2bfloat162_rn\(x\[2 \* k\], x\[2 \* k \+ 1\]\);\s*h\[k\] = [^\n]*\n\s*amax2 = dcp_max_bf16x2\(amax2, h\[k\] & 0x7fff7fffu\);\s*\}\s*\*reinterpret_cast<uint4\*>\(stage \+ DCP_SLOT\(r, c8\)\) = make_uint4\(h\[0\], h\[1\], h\[2\], h\[3\]\);/);
    expect(parked.source).toMatch(/dc_load8<float>\(stage, DCP_SLOT\(r, c8\), v\[pass\]\)/);
    expect(parked.source).not.toMatch(/\btile\b\s*[+\[]/);
    expect(parked.source).not.toMatch(/v\[pass\]\[e\] = x\[e\]/);
    expect(kept.source).toMatch(/v\[pass\]\[e\] = x\[e\]/);
    // Kept: rounded to bf16 (the reference's assemble) before the amax and the registers.
    expect(kept.source).toMatch(/dcp_round_bf16\(x\);\s*#pragma unroll\s*for \(int e = 0; e < 8; \+\+e\) \{\s*v\[pass\]\[e\] = x\[e\];\s*amax = fmaxf\(amax, fabsf\(x\[e\]\)\);/);
    // The block's scale a power of two (qkBlockScale), each code x times its exact reciprocal.
    for (const k of [kept, parked]) {
      expect(k.source).toContain('const float scale = dca_qk_scale(amax);');
      expect(k.source).toContain('return amax > 0.f ? __uint_as_float(max((__float_as_uint(__fdiv_rn(amax, 448.f)) + 0x7fffffu) & 0x7f800000u, 0x00800000u)) : 1.f;');
      expect(k.source).toMatch(/__nv_cvt_float2_to_fp8x2\(make_float2\(v\[pass\]\[4 \* h\] \* inv, v\[pass\]\[4 \* h \+ 1\] \* inv\)/);
    }
    expect(() => renderPack({ ...d, stage: false, park: true })).toThrow(/parked values: an e4m3 pack with staged rows/);
    expect(() => renderPack({ ...d, qk: 'bf16', park: true })).toThrow(/parked values/);
    // Persistent and parked: the loop's barrier comes before the next item's rows are copied into the buffer V's
    // transposed reads of the item before crossed lanes in.
    expect(renderPack({ ...d, persist: 8, park: true }).source).toMatch(/for \(int item = blockIdx\.x, k = 0;[^\n]*\n(\s*\/\/[^\n]*\n)*\s*__syncthreads\(\);\s*if \(item \+ \(int\)gridDim\.x/);
  });

  it('stages every per-feature float once, where dcp_lds8 reads lane c8\'s value e', () => {
    const d = tinyStaged(), D = d.headDim;
    const source = renderPack(d).source;
    const stores = [...source.matchAll(/dq_s\[(\d+) \+ ([^\]]+)\] = dc_load<float>/g)];
    // The tiny Flux.2 pack: per Q/K segment the GEMM's scales and the norm weights, per V segment the scales.
    expect(stores.length).toBe(d.segments.filter((s) => s.dequant).length + d.segments.filter((s) => s.norm).length);
    for (const [, , expr] of stores) {
      const pos = new Function('i', 'D', `return ${expr};`) as (i: number, D: number) => number;
      const seen = new Set<number>();
      for (let i = 0; i < D; i++) {
        const [c8, e] = [i >> 3, i & 7];
        // dcp_lds8(at, c8, D / 2, out): out[0..3] from at + 4·c8, out[4..7] from at + D / 2 + 4·c8.
        expect(pos(i, D)).toBe((e < 4 ? 0 : D / 2) + 4 * c8 + (e & 3));
        seen.add(pos(i, D));
      }
      expect(seen.size).toBe(D);
    }
    expect(source).toMatch(/dcp_lds8\(dq_s \+ \d+, c8, D \/ 2, w\);/);
  });

  it('reads a block that lies in one segment with its pointers set once an item (ROWS_UNIFORM); a straddling block row by row', () => {
    // Flux.2's joint pack: 512 text tokens, then 4096 image tokens; Qwen-Image's: 32 text tokens first (as its pipeline runs it).
    const [joint] = production(fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev);
    const source = renderPack(joint).source;
    expect(joint.segments.filter((s) => s.role === 'q').map((s) => [s.start, s.length])).toEqual([[0, 512], [512, 4096]]);
    for (const [lo, hi] of [[0, 512], [512, 4608]]) expect(source).toContain(`if (t0 >= ${lo} && t0 + 128 <= ${hi}) {`);
    expect(source).toMatch(/if \(uni\) \{\s*\/\/[^\n]*\n\s*dc_load8<float>\(stage, DCP_SLOT\(r, c8\), x\);/);
    // The row-by-row loads remain for the others (their segment chosen by t).
    expect(source).toMatch(/\} else \{\s*#pragma unroll\s*for \(int e = 0; e < 8; \+\+e\) \{ x\[e\] = 0\.f;/);
    const [qwen] = production(fullModelPath('qwen_image'), {}, true);
    expect(qwen.segments.filter((s) => s.role === 'q').map((s) => [s.start, s.length])).toEqual([[0, 32], [32, 4096]]);
    // The first block straddles text and image tokens (row by row; 32 text tokens hold no block of their own);
    // from t0 = 128 on, the image segment's tables.
    const q = renderPack(qwen).source;
    expect(q).not.toContain('t0 + 128 <= 32)');
    expect(q).toMatch(/if \(t0 >= 32 && t0 \+ 128 <= 4128\) \{ const int tl = t0 - 32; uni = true;[^\n]* ucsP = in\d+; usnP = in\d+;/);
    // Q and K items take their own segment's state, V items none of theirs (V's is set in its branch).
    expect(q).toMatch(/uni = false;\s*if \(role == 0\) \{\n[^\n]*\n\s*\}\s*else if \(role == 1\) \{/);
    // V's row pass is skipped where its staged rows are its values (a block in one segment, no norm); the keys the
    // mask may drop are zeroed there only where a uniform V block can hold them: Qwen-Image at 256 text tokens
    // (blocks 0 and 1), not at 32 (its only such block straddles, row by row).
    expect(source).toMatch(/if \(uni && !unorm\) \{[^}]*\} else\s*#pragma unroll 2\s*for \(int r = tid \/ LPR/);
    expect(q).toMatch(/if \(uni && !unorm\) \{\s*\/\/[^\n]*\n\s*\} else/);
    const [qwen256] = production(fullModelPath('qwen_image'), {});
    expect(qwen256.segments.filter((s) => s.role === 'v').map((s) => [s.start, s.length])).toEqual([[0, 256], [256, 4096]]);
    expect(renderPack(qwen256).source).toMatch(/if \(uni && !unorm\) \{\s*\/\/[^\n]*\n\s*\/\/[^\n]*\n\s*if \(t0 < 256\) \{/);
    // Persistent packs and packs dequantizing a deferred GEMM's output keep the row-by-row loads (their state spilled).
    const plain = { ...joint, vquant: undefined }; // (a persistent pack takes V as bf16)
    expect(renderPack(plain).source).toContain('bool uni');
    expect(renderPack({ ...plain, persist: 132 }).source).not.toContain('bool uni');
    const deferredPack = tinyStaged();
    expect(deferredPack.segments.some((s) => s.dequant)).toBe(true);
    expect(renderPack(deferredPack).source).not.toContain('bool uni');
    expect(renderPack({ ...deferredPack, segments: deferredPack.segments.map(({ dequant: _, ...s }) => s) }).source).toContain('bool uni');
    // Segments whose token strides differ keep the row-by-row loads alone.
    const odd = { ...joint, segments: joint.segments.map((s, i) => (i === 0 && s.cos ? { ...s, cos: { ...s.cos, strides: [s.cos.strides[0] * 2, 1] } } : s)) };
    expect(renderPack(odd).source).not.toContain('if (uni) {');
  });

  it('full-size e4m3 packs as the models run them park their values: 3 CTAs of 256 threads a SM, no spills (sm_90a)', async () => {
    const list = [...production(fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev), ...production(fullModelPath('qwen_image'), {}, true)];
    const kernels = new Map(list.map((d) => renderPack(d)).map(({ args: _, ...k }) => [k.name, k]));
    expect(kernels.size).toBe(3); // Flux.2 joint and single-stream, Qwen-Image joint
    for (const d of list) expect([d.stage, d.park, d.minBlocks, d.threads]).toEqual([true, true, 3, 256]);
    const report = await buildKernels([{ name: 'packs', source: renderUnit([...kernels.values()]), hot: true }], { target: 'h100', cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    for (const f of report.units[0].functions) {
      expect(f.spillStoreBytes + f.spillLoadBytes, f.name).toBe(0);
      expect(f.registers, f.name).toBeLessThanOrEqual(Math.floor(65536 / (3 * 256) / 8) * 8);
    }
    for (const k of kernels.values()) expect(3 * (k.sharedBytes + 1024)).toBeLessThanOrEqual(228 * 1024);
  }, 240_000);
});
