/**
 * Attention on the CPU machine (nvcc present, no GPU): lower-attention's structure and numerics
 * (pack + packed attention against FusedAttention, bf16 and fp8 Q·Kᵀ), the kernel descriptors of
 * real nodes (executing what a descriptor says, through the strided windows it bakes in, equals the
 * reference executor's FusedAttention on the same buffers), pure rendering, launch arguments, and
 * the nvcc build of the tiny and full-size attention kernels for sm_90a and sm_100a without spills.
 * The kernels' numerics are checked on the GPU (test/gpu/attention.ts).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { attentionDescriptor, lastTileKeys, lastWavePieces, packDescriptor, renderAttention, renderPack } from '../compiler/codegen/attention.ts';
import { reshapeDims } from '../compiler/codegen/views.ts';
import { deferDequant, kernelPlan } from '../compiler/codegen/plan.ts';
import { renderUnit } from '../compiler/codegen/render.ts';
import { FULL_MODELS, fullModelPath } from '../compiler/full-models.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { rebatch } from '../compiler/ir/rebatch.ts';
import { resequence } from '../compiler/ir/resequence.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { lookupOp } from '../compiler/ops/registry.ts';
import { lowerAttention } from '../passes/lower-attention.ts';
import { PIPELINE, pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { AttentionReference } from './gpu/attention-reference.ts';
import { ops, random, throughViews } from './helpers/attention.ts';
import { relL2 } from './helpers/numerics.ts';

const MODELS = ['flux2', 'qwen_image', 'mistral_text_encoder', 'qwen_text_encoder'] as const;

/** The fp8 pipeline up to lower-attention (`before`) and after it (`after`). */
function compileTiny(name: string, file = join(tinyDir(name), 'model.onnx'), shapes: Record<string, number> = {}, attention: 'bf16' | 'fp8' | 'auto' | 'fp8-pv' = 'bf16', reshape = (g: Graph) => g) {
  const passes = pipelineFor(insertQuantize({ ...defaultPolicy('fp8'), attention }));
  const inferred = inferTypes(reshape(specialise(importOnnx(file).graph, shapes)));
  const before = runPipeline(inferred, { passes: passes.filter((p) => p !== lowerAttention) });
  const after = runPipeline(before, { passes: [lowerAttention] });
  return { before: before.graph, after: after.graph };
}



describe('lower-attention', () => {
  it('splits every FusedAttention of the low-precision pipelines into pack + attention; fp32 keeps it', () => {
    for (const name of MODELS) {
      const { before, after } = compileTiny(name);
      const fused = ops(before, 'FusedAttention').length;
      expect(fused, name).toBeGreaterThan(0);
      expect(ops(after, 'FusedAttention'), name).toHaveLength(0);
      expect(ops(after, 'AttentionPack'), name).toHaveLength(fused);
      expect(ops(after, 'PackedAttention'), name).toHaveLength(fused);
    }
    expect(PIPELINE).not.toContain(lowerAttention);
  });

  it('pack + packed attention computes FusedAttention with Q/K/V in bf16 (and Q·Kᵀ in fp8 when asked)', () => {
    for (const [name, attention] of [['flux2', 'bf16'], ['mistral_text_encoder', 'bf16'], ['qwen_image', 'fp8']] as const) {
      const { before, after } = compileTiny(name, undefined, {}, attention);
      const fused = ops(before, 'FusedAttention')[0];
      const pack = ops(after, 'AttentionPack').find((n) => n.outputs[0].startsWith(`${fused.outputs[0]}/`))!;
      const attn = ops(after, 'PackedAttention').find((n) => n.outputs[0] === fused.outputs[0])!;
      const inputs = fused.inputs.map((x, i) => (x ? random(before, x, 100 + i, i === 0 ? 1 : 2) : undefined));
      const want = (lookupOp(fused)!.exec(inputs, fused)[0] as Tensor).toFloat32();
      const packed = lookupOp(pack)!.exec([undefined, ...inputs.slice(1)], pack) as Tensor[];
      expect(packed.map((t) => t.dtype)).toEqual(attention === 'fp8'
        ? ['float8e4m3fn', 'float8e4m3fn', 'bfloat16', 'float32', 'float32'] : ['bfloat16', 'bfloat16', 'bfloat16']);
      const got = (lookupOp(attn)!.exec([inputs[0], ...packed], attn)[0] as Tensor).toFloat32();
      const err = relL2(got, want);
      expect(err, name).toBeLessThan(1e-2);
      expect(err, name).toBeGreaterThan(0); // bf16 rounding is really there
    }
  });

  it('leaves head dims the kernels lack (here 48) as FusedAttention, named pending in the plan', async () => {
    const { buildGraph } = await import('./helpers/graph.ts');
    const g = buildGraph({
      inputs: { q: ['bfloat16', [1, 16, 2, 48]], k: ['bfloat16', [1, 16, 2, 48]], v: ['bfloat16', [1, 16, 2, 48]] },
      nodes: [['dc.FusedAttention', ['', 'q', 'k', 'v'], ['y'], { segments: 1, layouts: ['bshd', 'bshd', 'bshd'], outLayout: 'bshd', scale: 0.1, heads: 2, kvHeads: 2, headDim: 48, kvLength: 16 }]],
      outputs: ['y'],
    });
    const { graph } = runPipeline(g, { passes: [lowerAttention] });
    expect(ops(graph, 'FusedAttention')).toHaveLength(1);
    expect(kernelPlan(graph, planMemory(graph)).pending).toEqual({ 'dc.FusedAttention': 1 });
  });
});

describe('attention kernel descriptors', () => {
  it('strided reshape: splits and merges contiguous runs, refuses a dim straddling two runs', () => {
    // [4, 6] window of a [4, 10] buffer (a Split along the last axis), reshaped to [4, 2, 3] and [2, 2, 6].
    const split = [{ size: 4, stride: 10 }, { size: 6, stride: 1 }];
    expect(reshapeDims(split, [4, 2, 3])).toEqual([{ size: 4, stride: 10 }, { size: 2, stride: 3 }, { size: 3, stride: 1 }]);
    expect(reshapeDims(split, [2, 2, 6])).toEqual([{ size: 2, stride: 20 }, { size: 2, stride: 10 }, { size: 6, stride: 1 }]);
    expect(reshapeDims(split, [24])).toBeUndefined();
    expect(reshapeDims([{ size: 4, stride: 6 }, { size: 6, stride: 1 }], [1, 24, 1])).toEqual([{ size: 1, stride: 0 }, { size: 24, stride: 1 }, { size: 1, stride: 0 }]);
  });

  it.each(MODELS)('%s: what the descriptors say equals the reference FusedAttention on the same buffers', (name) => {
    const { before, after } = compileTiny(name);
    for (const fused of ops(before, 'FusedAttention').slice(0, 2)) {
      const pack = packDescriptor(after, ops(after, 'AttentionPack').find((n) => n.outputs[0].startsWith(`${fused.outputs[0]}/`))!);
      const attn = attentionDescriptor(after, ops(after, 'PackedAttention').find((n) => n.outputs[0] === fused.outputs[0])!);
      // Random roots (the buffers the kernels receive), the views computed from them by the executor.
      const roots = new Map<string, Tensor>();
      [...pack.inputs.map((x) => x.value), ...(attn.mask ? [attn.mask.value] : [])].forEach((r, i) => roots.set(r, random(after, r, 7 + i, 1.5)));
      const inputs = fused.inputs.map((x) => (x ? throughViews(before, x, roots) : undefined));
      const want = (lookupOp(fused)!.exec(inputs, fused)[0] as Tensor).toFloat32();
      const reference = new AttentionReference(pack, attn, (v, i) => roots.get(v)!.get(i));
      const got = new Float32Array(want.length);
      for (let b = 0; b < attn.batch; b++) for (let h = 0; h < attn.heads; h++) for (let s = 0; s < attn.seqQ; s++) {
        const row = reference.output(b, h, s);
        const base = attn.outLayout === 'bshd' ? ((b * attn.seqQ + s) * attn.heads + h) * attn.headDim : ((b * attn.heads + h) * attn.seqQ + s) * attn.headDim;
        row.forEach((v, i) => (got[base + i] = v));
      }
      expect(relL2(got, want), `${name} ${fused.outputs[0]}`).toBeLessThan(1e-6);
    }
  });

  it('a partial last wave runs as pieces over key ranges: Flux.2\'s 1728 units as 1716 CTAs and 12 x 6 pieces; whole waves, causal attention and splits the loop cannot take are not', () => {
    const flux = { batch: 1, heads: 48, seqQ: 4608, seqKv: 4608, causal: false, pv: 'fp8' as const };
    expect(lastWavePieces({ ...flux, bn: 192 })).toBe(6); // 24 key tiles: runs of 4 (12 x 6 <= 132 SMs; 8 pieces would not divide 24)
    expect(lastWavePieces({ ...flux, bn: 128 })).toBe(9); // 36 tiles: runs of 4 (12 pieces would leave runs of 3, odd)
    expect(lastWavePieces({ ...flux, seqQ: 4128, seqKv: 4128, batch: 2, heads: 24, bn: 192 })).toBe(0); // 1584 = 12 x 132
    expect(lastWavePieces({ ...flux, bn: 192, causal: true })).toBe(0);
    expect(lastWavePieces({ ...flux, bn: 192, pv: undefined })).toBe(0); // bf16 P·V: not measured (b200 runs it)
    expect(lastWavePieces({ ...flux, seqQ: 1024, seqKv: 1024, heads: 12 })).toBe(0); // 96 units: no whole wave
    expect(lastWavePieces({ ...flux, seqKv: 640 })).toBe(0); // 5 tiles: no even split into runs of 2+
    expect(lastWavePieces({ ...flux, seqKv: 512 })).toBe(2); // 4 tiles: 2 runs of 2

    const { after } = compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'fp8');
    const d = attentionDescriptor(after, ops(after, 'PackedAttention')[0]); // e4m3 Q·Kᵀ, bf16 P·V: pieces only on request
    expect([d.bn, d.tailPieces, lastWavePieces(d)]).toEqual([192, undefined, 0]);
    const pieces = renderAttention({ ...d, tailPieces: 6 }), whole = renderAttention(d);
    expect([pieces.grid, whole.grid]).toEqual([1716 + 12 * 6, 1728]);
    // The pieces' slots are module-scope (12 units x 6 pieces x 256 consumer threads x the float4s of a thread's O, then its
    // m and l: bf16 P·V's 68 registers with the MMA row sums' 4, 18; FP8 P·V's 64, 17), and a count a unit; whole units have none.
    expect(d.lsum).toBe('mma');
    expect(pieces.source).toContain(`__device__ float4 ${pieces.name}_part[${12 * 6 * 18 * 256}]`);
    const fp8pv = renderAttention({ ...d, pv: 'fp8', lsum: undefined });
    expect(fp8pv.source).toContain(`__device__ float4 ${fp8pv.name}_part[${12 * 6 * 17 * 256}]`);
    expect(pieces.source).toContain(`__device__ unsigned int ${pieces.name}_done[12]`);
    expect(whole.source).not.toContain('_part[');
    expect(() => renderAttention({ ...d, tailPieces: 5 })).toThrow(/last-wave pieces .*found 5 pieces of 24 key tiles, 1728 units/s);
    expect(() => renderAttention({ ...d, tailPieces: 12 })).not.toThrow(); // runs of 2 (144 CTAs for 132 SMs: lastWavePieces' choice, not a condition)
    expect(() => renderAttention({ ...d, tailPieces: 2.4 })).toThrow(/2\.4 pieces/);
    expect(() => renderAttention({ ...d, tailPieces: 24 })).toThrow(/24 pieces of 24 key tiles/);
  });

  it('the epilogue stages O in shared memory and stores it back in row order (16 bytes a lane) where a row is the head\'s whole 16-bit width and 128 rows fit over Q and the K stages; otherwise pairs go straight to global memory', () => {
    const { after } = compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'fp8');
    const d = attentionDescriptor(after, ops(after, 'PackedAttention')[0]);
    expect([d.dp, d.headDim, d.outType]).toEqual([128, 128, '__nv_bfloat16']);
    const staged = /dca_named_sync\(5, 256\);[\s\S]*sO \+ rl0 \* 272u[\s\S]*__syncwarp\(\);[\s\S]*dca_lds_u4\(sO \+ row \* 272u \+ 16u \* part\)[\s\S]*reinterpret_cast<uint4\*>\(out \+ rowOffset\(eqt \* BM \+ \(int\)row\)\)\[part\] = v;/;
    for (const v of [d, { ...d, pv: 'fp8' as const, lsum: undefined }, { ...d, bn: 128, stages: 2 }]) {
      const k = renderAttention(v);
      expect(k.source, JSON.stringify(v)).toMatch(staged);
      // The per-pair stores stay for the portable (mma.sync) build.
      expect(k.source).toMatch(/#else[\s\S]*dca_store2\(o \+ col/);
    }
    for (const v of [{ ...d, outType: 'float' }, { ...d, headDim: 120 }]) expect(renderAttention(v).source, JSON.stringify(v)).not.toContain('dca_lds_u4(sO');
  });

  it('the epilogue\'s inputs come under the last P·V: l summed over the quad and V\'s channel scales loaded between its issue and its wait, once', () => {
    const { after } = compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'fp8');
    const d = attentionDescriptor(after, ops(after, 'PackedAttention')[0]);
    const quadSum = '__shfl_xor_sync(0xffffffffu, l0, 1)';
    const underLastPV = /dca_named_arrive\(2 - wg, 256\);\s*\/\/ Under the last P·V[^\n]*\n#if !LSUM_MMA\n[^#]*__shfl_xor_sync\(0xffffffffu, l1, 2\);\n#endif\n#if DCA_WGMMA\n\s*\{[^}]*sv\[jd\] = __ldg\([^}]*\}\n#endif\n\s*dca_wgmma_wait<0>\(\);/;
    for (const v of [{ ...d, pv: 'fp8' as const, qk: 'fp8' as const, lsum: undefined, schedule: 'pingpong' as const }, { ...d, pv: 'int8' as const, qk: 'int8' as const, lsum: undefined, pvAccumulate: 'direct' as const, schedule: 'pingpong' as const }]) {
      const src = renderAttention(v).source;
      expect(src, JSON.stringify(v)).toMatch(underLastPV);
      // Once on each path: the wgmma ping-pong's (under the last P·V) and the portable build's serial loop (after it).
      expect(src.split(quadSum).length - 1).toBe(2);
      // The staged epilogue loads nothing from V's channel scales after the barrier.
      expect(src.slice(src.indexOf('dca_named_sync(5, 256);'))).not.toMatch(/__ldg\(reinterpret_cast<const float2\*>\(vsHead \+ 8 \* jd/);
    }
    // bf16 P·V with the MMA's row sums: l is read from O, so no quad sum on the wgmma path.
    const bf16 = renderAttention({ ...d, pv: undefined, lsum: 'mma' as const, schedule: 'pingpong' as const }).source;
    expect(bf16).not.toMatch(/sv\[jd\] = __ldg/);
  });

  it('s8 Q·Kᵀ: one producer warp writes Q\'s row scales and K\'s block scales to shared memory while Q\'s copy is in flight, its 32 arrivals on Q\'s barrier; e4m3 Q·Kᵀ: the consumers write K\'s', () => {
    const { after } = compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'fp8');
    const d = attentionDescriptor(after, ops(after, 'PackedAttention')[0]);
    const int8 = renderAttention({ ...d, pv: 'int8', qk: 'int8', lsum: undefined, pvAccumulate: 'direct' }).source;
    expect(int8).toContain('dca_mbar_init(BAR(0), 33);');
    // Warp 1 of the producer: each lane 4 rows' scales (a float4), then the head's 36 K block scales, then its arrival.
    expect(int8).toMatch(/if \(warp == 1\) \{[^]*?__ldg\(reinterpret_cast<const float4\*>\(qs \+ [^;]*\) \+ lane\);[^]*?for \(int i = lane; i < 36; i \+= 32\) dca_sts_f\(sKsc \+ 4 \* i, __ldg\(ksHead \+ i\)\);\s*dca_mbar_arrive\(BAR\(0\)\);\s*\}/);
    // The consumers neither load nor write a scale.
    const consumers = int8.slice(int8.indexOf('// ---- consumers'));
    expect(consumers).not.toMatch(/dca_sts_f2?\(s(Ksc|Qf)/);
    expect(consumers).not.toMatch(/__ldg\((qs|ksHead)/);
    // Row r's scale lands where the softmax reads rows g and g + 8 of warp r / 16: the pair 8 · (r / 16) + r % 8, element (r / 8) % 2.
    const pair = (r: number) => 8 * (8 * (r >> 4) + (r & 7)) + 4 * ((r >> 3) & 1);
    const seen = new Set(Array.from({ length: 128 }, (_, r) => pair(r)));
    expect(seen.size).toBe(128);
    for (let cw = 0; cw < 8; ++cw) for (let g = 0; g < 8; ++g) expect([pair(16 * cw + g), pair(16 * cw + g + 8)]).toEqual([8 * (8 * cw + g), 8 * (8 * cw + g) + 4]);
    expect(int8).toContain('dca_sts_f(sQf + 8 * (8 * (r >> 4) + (r & 7)) + 4 * ((r >> 3) & 1),');
    const fp8 = renderAttention({ ...d, pv: 'fp8', qk: 'fp8', lsum: undefined, pvAccumulate: 'direct' }).source;
    expect(fp8).toContain('dca_mbar_init(BAR(0), 1);');
    expect(fp8).not.toContain('if (warp == 1)');
    expect(fp8.slice(fp8.indexOf('// ---- consumers'))).toMatch(/dca_sts_f\(sKsc \+ 4 \* i, __ldg\(ksHead \+ i\)\);\s*dca_named_sync\(3, 256\);/);
  });

  it('the producer prefetches into L2 the Q rows of the unit a wave later (blockIdx + 132), where the grid has one', () => {
    const { after } = compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'fp8');
    const d = attentionDescriptor(after, ops(after, 'PackedAttention')[0]);
    const k = renderAttention(d);
    expect(k.grid).toBe(1728); // bf16 P·V: no last-wave pieces
    // 36 query tiles a head; e4m3 Q: one 16 KB block of 128 rows of 128 bytes.
    expect(k.source).toMatch(/if \(blockIdx\.x \+ 132 < 1728\) \{\s*int nb = blockIdx\.x \+ 132;\s*const int nqt = nb % 36;[\s\S]*?dca_prefetch_l2\(nQ \+ 0LL \* 589824, BM \* 128\);\s*\}/);
    const few = renderAttention({ ...d, heads: 2 }); // 72 units: a single wave
    expect(few.grid).toBe(72);
    expect(few.source).not.toContain('dca_prefetch_l2(nQ');
  });

  it('the last key tile narrowed to the keys it holds: Qwen-Image\'s 4128 keys compute 96 of the 22nd 192-key tile with FP8 P·V; where the kernel cannot, the whole tile', () => {
    const qwen = { seqKv: 4128, bn: 192, pv: 'fp8' as const, qk: 'fp8' as const, pvAccumulate: 'direct' as const, schedule: 'pingpong' as const, pBuffers: 2 as const, causal: false };
    expect(lastTileKeys(qwen)).toBe(96);
    expect(lastTileKeys({ ...qwen, seqKv: 4160 })).toBe(128); // 128 of the 22nd tile hold keys
    expect(lastTileKeys({ ...qwen, seqKv: 4100 })).toBe(96); // 68 keys, rounded up to the P·V's 32-key steps
    expect(lastTileKeys({ ...qwen, bn: 128 })).toBe(128); // 33 tiles: the last runs inside the paired loop
    expect(lastTileKeys({ ...qwen, pv: undefined })).toBe(192);
    expect(lastTileKeys({ ...qwen, pBuffers: 1 })).toBe(192);
    expect(lastTileKeys({ ...qwen, tailPieces: 6 })).toBe(192);
    expect(lastTileKeys({ ...qwen, pvAccumulate: 'split' })).toBe(192);
    expect(lastTileKeys({ ...qwen, pvAccumulate: undefined })).toBe(192); // the renderer's default: split
    expect(lastTileKeys({ ...qwen, seqKv: 4608 })).toBe(192);

    const { after } = compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'fp8');
    const flux = attentionDescriptor(after, ops(after, 'PackedAttention')[0]);
    expect(lastTileKeys({ ...flux, pv: 'fp8', pvAccumulate: 'direct', pBuffers: 2 })).toBe(192); // 4608 = 24 x 192: nothing to narrow
    // Qwen-Image's node (FP8 P·V, 4128 tokens) from Flux.2's descriptor: 33 x 48 units fill 12 waves, so no pieces.
    const d = { ...flux, pv: 'fp8' as const, pvAccumulate: 'direct' as const, lsum: undefined, seqQ: 4128, seqKv: 4128, pBuffers: 2 as const, tailPieces: undefined };
    expect(lastWavePieces(d)).toBe(0);
    const narrow = renderAttention(d), whole = renderAttention({ ...d, narrowLastTile: false });
    const asked = renderAttention({ ...d, narrowLastTile: true }); // absent: wherever the kernel can
    expect(asked.source.replaceAll(asked.name, 'K')).toBe(narrow.source.replaceAll(narrow.name, 'K'));
    expect(narrow.grid).toBe(whole.grid);
    expect(narrow.source).toContain('dca_wgmma_ss_e4m3_n96(SL, ');
    expect(narrow.source).toMatch(/for \(int kk = 0; kk < 96 \/ 32; \+\+kk\)/);
    expect(whole.source).not.toContain('_n96');
    expect(() => renderAttention({ ...d, pBuffers: 1, narrowLastTile: true })).toThrow(/a narrow last key tile .*found 22 tiles of 192 keys over 4128 keys, pv='fp8', schedule 'pingpong', 1 P arrays/s);
    expect(() => renderAttention({ ...flux, narrowLastTile: true })).toThrow(/a narrow last key tile/);
    expect(() => renderAttention({ ...d, qk: 'int8', narrowLastTile: true })).toThrow(/pv='fp8' with qk='fp8'.*found qk='int8'/s);
    // Qwen-Image's 64-token module: 4160 keys leave 128 in the 22nd tile, two 64-key regions on either side of the K block boundary.
    expect(lastTileKeys({ ...d, seqKv: 4160 })).toBe(128);
    expect(renderAttention({ ...d, seqQ: 4160, seqKv: 4160, narrowLastTile: true }).source).toMatch(/mx0 = fmaxf\(r0\[0\] \* CR\(0, 0\), r0\[8\] \* CR\(8, 0\)\);/);
  });

  it('a mask\'s extent: Qwen-Image masks only its text keys (Concat of the padding mask and constant ones), checked on the mask\'s values; the kernel reads it only in the tiles it reaches', () => {
    const { after } = compileTiny('qwen_image');
    const attn = ops(after, 'PackedAttention')[0];
    const d = attentionDescriptor(after, attn);
    const text = (after.types.get('encoder_hidden_states') as unknown as { shape: number[] }).shape[1];
    expect(d.mask!.keys).toBe(text);
    expect(d.seqKv).toBeGreaterThan(text);
    // The mask's values for a padding mask with zeros: some text keys masked, none after them.
    const padding = Tensor.zeros('int64', [1, text]);
    for (let i = 0; i < text; i++) padding.set(i, i < text - 5 ? 1 : 0);
    const mask = throughViews(after, attn.inputs[0], new Map([['encoder_hidden_states_mask', padding]])).toFloat32();
    const row = mask.subarray(mask.length - d.seqKv);
    expect([...row.subarray(d.mask!.keys)].every((x) => x === 0)).toBe(true);
    expect([...row.subarray(0, d.mask!.keys)].filter((x) => x < -1e30)).toHaveLength(5);
    // The mask is read (and added, over the column's factor) only in the key tiles it reaches.
    expect(renderAttention(d).source).toMatch(/if \(\(j0 \+ j\) < 1\)\s*\{\s*#pragma unroll\s*for \(int i = 0; i < BN \/ 2; i \+= 4\) \{\s*const float ci/);
    // A mask whose structure says nothing (the text encoder's, from its attention_mask input) keeps every key in play.
    const te = compileTiny('mistral_text_encoder').after;
    const td = attentionDescriptor(te, ops(te, 'PackedAttention')[0]);
    expect(td.mask!.keys).toBe(td.seqKv);
    expect(renderAttention(td).source).not.toMatch(/if \(\(j\) < \d+\)/);
  });

  it('pack launch shapes: role-heads of a CTA, threads, V\'s bf16 rows the only shared tile; layouts the kernel cannot take are refused', () => {
    const { after } = compileTiny('flux2', undefined, {}, 'fp8');
    const node = ops(after, 'AttentionPack')[0];
    const d = packDescriptor(after, node, deferDequant(after));
    expect(d.qk).toBe('fp8');
    expect(d.segments.some((s) => s.dequant)).toBe(true);
    const blocks = Math.ceil(Math.max(d.seqQ, d.seqKv) / 128), roleHeads = d.heads + 2 * d.kvHeads, items = blocks * roleHeads * d.batch;
    // The tiny fixture's GEMMs write float rows, which are not staged; as the full-size models' bf16
    // rows (16-byte copies) they are: V's bf16 tile, then one block of rows.
    expect(d.stage).toBe(false);
    const sources = new Set(d.segments.map((x) => x.x.param));
    const asBf16 = { ...d, inputs: d.inputs.map((x, i) => (sources.has(i) ? { ...x, type: '__nv_bfloat16' } : x)) };
    expect(packDescriptor(after, node, deferDequant(after)).stage).toBe(false);
    const one = renderPack({ ...asBf16, stage: true }), rows = 128 * d.headDim * 2, tile = 128 * (d.headDim + 2) * 2;
    expect([one.grid, one.block, one.sharedBytes]).toEqual([items, 256, tile + rows]);
    expect(one.source).toMatch(/dcp_cp_async16\(stage/);
    expect(renderPack(d).sharedBytes).toBe(tile);
    expect(renderPack(d).source).not.toMatch(/dcp_cp_async16/);
    expect(() => renderPack({ ...d, stage: true })).toThrow(/bf16 rows in runs of 8/);
    // e4m3 codes straight from registers: no float rows in shared memory, the 8-byte stores of a row's half-chunks.
    expect(one.source).not.toMatch(/float\* tile|extern __shared__ float/);
    expect(one.source).toMatch(/__nv_cvt_float2_to_fp8x2/);
    if (d.heads % 2 === 0 && d.kvHeads % 2 === 0) {
      const pairs = renderPack({ ...asBf16, stage: true, group: 2, minBlocks: 1 });
      expect([pairs.grid, pairs.block, pairs.sharedBytes]).toEqual([items / 2, 512, 2 * one.sharedBytes]);
      expect(pairs.name).not.toBe(one.name);
    }
    // Persistent: at most `persist` CTAs, two row buffers a role-head; it needs the staged rows.
    const persistent = renderPack({ ...asBf16, stage: true, persist: 7 });
    expect([persistent.grid, persistent.sharedBytes]).toEqual([Math.min(7, items), tile + 2 * rows]);
    expect(renderPack({ ...asBf16, stage: true, persist: 100000 }).grid).toBe(items);
    expect(() => renderPack({ ...asBf16, stage: false, persist: 7 })).toThrow(/persistent pack with staged rows/);
    expect(() => renderPack({ ...d, group: 3 })).toThrow(/group of role-heads/);
    expect(() => renderPack({ ...d, threads: 384 })).toThrow(/256 or 512 threads/);
    expect(() => renderPack({ ...d, headDim: 16, threads: 512 })).toThrow(/256 or 512 threads/);
  });

  it('renders purely, one kernel per distinct shape, arguments in parameter order', () => {
    const { after } = compileTiny('flux2');
    const plan = kernelPlan(after, planMemory(after));
    const again = kernelPlan(after, planMemory(after));
    const attn = plan.kernels.filter((k) => k.name.startsWith('attn_')), packs = plan.kernels.filter((k) => k.name.startsWith('attnpack_'));
    expect(attn).toHaveLength(1); // 2 double + 4 single blocks, one attention shape
    expect(packs).toHaveLength(2); // joint (two segments) and single-stream packs
    expect(again.kernels.map((k) => k.source)).toEqual(plan.kernels.map((k) => k.source));
    const launches = plan.launches.filter((l) => l.kind === 'kernel' && l.kernel.startsWith('attn'));
    expect(launches).toHaveLength(12);
    for (const l of launches) {
      if (l.kind !== 'kernel') continue;
      const k = plan.kernels.find((x) => x.name === l.kernel)!;
      const params = k.source.slice(k.source.indexOf(`${l.kernel}(`)).split(')')[0].split(',').length;
      expect(l.args, l.kernel).toHaveLength(params);
      if (l.kernel.startsWith('attn_')) expect(l.sharedBytes).toBeGreaterThan(48 * 1024); // the runtime raises the kernel's dynamic limit
    }
    expect(plan.pending).toEqual({});
  });
});

const FULL = ['flux2_dev', 'qwen_image', 'mistral_small_3_1_text_encoder', 'qwen2_5_vl_7b_text_encoder'];

describe('attention kernels build with nvcc', () => {
  const kernels = (list: Graph[]) => {
    const all = new Map<string, ReturnType<typeof renderPack>>();
    for (const g of list) {
      expect(kernelPlan(g, planMemory(g)).pending['dc.FusedAttention']).toBeUndefined();
      const deferred = deferDequant(g);
      for (const n of g.nodes as Node[]) {
        if (n.op === 'AttentionPack') {
          // As the plan renders it (deferred GEMM outputs dequantized as loaded) and without deferral.
          for (const d of [packDescriptor(g, n), packDescriptor(g, n, deferred)]) {
            const k = renderPack(d);
            all.set(k.name, k);
            // The layouts the pack may take: role-head pairs a CTA, 512 threads a head, token-major CTAs, rows not staged, persistent.
            if (d.qk === 'fp8' && d.heads % 2 === 0 && d.kvHeads % 2 === 0 && d.segments.some((x) => x.dequant)) {
              for (const v of [{ group: 2, minBlocks: 1 }, { threads: 512, minBlocks: 1 }, { order: 'tokens' as const }, { stage: false, park: false, minBlocks: 2 }, { persist: 264 }]) { const kv = renderPack({ ...d, ...v }); all.set(kv.name, kv); }
            }
          }
        }
        if (n.op === 'PackedAttention') { const k = renderAttention(attentionDescriptor(g, n)); all.set(k.name, k); }
      }
    }
    return [...all.values()];
  };
  // The tiny models, the full-size transformers and text encoders (models/full); fp8 Q·Kᵀ on flux2_dev too.
  const both = kernels([...MODELS.map((m) => compileTiny(m).after), ...FULL.map((m) => compileTiny(m, fullModelPath(m), FULL_MODELS[m]).after),
    compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, 'fp8').after]);
  // The transformers as `npx compile --target h100` builds them (the integer P·V; b200 runs bf16 attention), and with
  // "fp8-pv" (FP8 P·V): Flux.2 (last-wave pieces), Qwen-Image at 32 text tokens and batch 2 (FP8 P·V: a narrow last key tile).
  const h100 = kernels((['auto', 'fp8-pv'] as const).flatMap((attention) => [compileTiny('flux2_dev', fullModelPath('flux2_dev'), FULL_MODELS.flux2_dev, attention).after,
    compileTiny('qwen_image', fullModelPath('qwen_image'), FULL_MODELS.qwen_image, attention, (g) => rebatch(resequence(g, 32), 2)).after]));

  it.each(['h100', 'b200'] as const)('builds for %s: every kernel present, no spills', async (target) => {
    const list = target === 'h100' ? [...new Map([...both, ...h100].map((k) => [k.name, k])).values()] : both;
    expect(list.length).toBeGreaterThanOrEqual(16);
    if (target === 'h100') expect([h100.some((k) => k.source.includes('__device__ float4 attn_')), h100.some((k) => k.source.includes('_n96(SL, '))]).toEqual([true, true]);
    const report = await buildKernels([{ name: `attention_${target}`, source: renderUnit(list), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const fns = report.units[0].functions;
    for (const k of list) expect(fns.some((f) => f.name === k.name), k.name).toBe(true);
    expect(fns.every((f) => f.spillStoreBytes === 0 && f.spillLoadBytes === 0)).toBe(true);
  }, 240_000);
});

