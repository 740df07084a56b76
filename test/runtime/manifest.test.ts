/**
 * What the artifact tells the runtime (compiler/compile.ts, compiler/weights-file.ts): graph inputs
 * and outputs with their arena slots, a type for every launch argument, and a weight entry for every
 * weight a launch reads — bf16 GEMM weights transposed to [N, K] and rounded, load-time prepared
 * weights (fuse-linear's concatenation) evaluated, learned vs inline values told apart; a
 * structure-only export describes its weights without a file (inline ones with their bytes).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.ts';
import { fullModelPath } from '../../compiler/full-models.ts';
import { type DType, bf16ToF32, bytesFor, f32ToBf16 } from '../../compiler/ir/dtype.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { loadConstant } from '../../compiler/onnx/constants.ts';
import type { Manifest } from '../../runtime/gpu/artifact.ts';
import { tinyDir } from '../helpers/fixtures.ts';
import { MLP, writeMlp } from './mlp.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rt-manifest-'));
const read = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;

describe('tiny flux2 (fp8) manifest', () => {
  let m: Manifest;
  let bin: Buffer;
  beforeAll(async () => {
    await compileModel({ model: tinyDir('flux2'), out: join(tmp, 'flux2'), build: false });
    m = read(join(tmp, 'flux2'));
    bin = readFileSync(join(tmp, 'flux2', 'weights.bin'));
  });

  it('places inputs and outputs in the arena and types every launch argument', () => {
    const arena = new Map((m as unknown as { arena: { value: string; offset: number }[] }).arena.map((b) => [b.value, b.offset]));
    for (const i of m.io.inputs) expect(i.offset).toBe(arena.get(i.name));
    expect(m.io.inputs.map((i) => i.name).sort()).toEqual(['encoder_hidden_states', 'guidance', 'hidden_states', 'img_ids', 'timestep', 'txt_ids']);
    expect(m.io.outputs).toEqual([{ name: 'sample', dtype: 'float32', shape: [1, 256, 128], offset: expect.any(Number), bytes: 256 * 128 * 4 }]);
    for (const l of m.launchPlan) for (const a of l.args) expect(m.values[a.value], a.value).toMatch(/^[a-z0-9]+\[[0-9,]*\]$/);
  });

  it('has a weight entry for every weight a launch reads, quantized ones stored [N, K] with their scales', () => {
    const names = new Set(m.weights.tensors.flatMap((t) => [t.name, t.scale].filter(Boolean)));
    for (const l of m.launchPlan) for (const a of l.args) if (a.where === 'weight') expect(names.has(a.value), a.value).toBe(true);
    for (const t of m.weights.tensors.filter((x) => x.kind === 'fp8')) {
      expect(t.layout).toBe('nk');
      expect(t.scale).toBe(t.name.replace(/wq$/, 'ws'));
      expect(t.sections.codes.length).toBe(t.shape[0] * t.shape[1]);
    }
    // Learned = from the external data; inline constants (shape vectors, scalars) are not.
    expect(m.weights.tensors.find((t) => t.name === 'scalar_tensor_default')?.learned).toBe(false);
    expect(m.weights.tensors.filter((t) => t.kind === 'fp8').every((t) => t.learned)).toBe(true);
  });

  it('writes a load-time fused weight as the concatenation of its sources', () => {
    const fused = m.weights.tensors.find((t) => t.name === 'linear_4/fused/weight')!;
    expect(fused).toMatchObject({ kind: 'raw', dtype: 'float32', shape: [2176, 128], learned: true });
    const g = importOnnx(join(tinyDir('flux2'), 'model.onnx')).graph;
    const first = loadConstant(g.constants.get('m.double_stream_modulation_img.linear.weight')!, 'img').data as Float32Array;
    const bytes = bin.subarray(fused.sections.data.offset, fused.sections.data.offset + first.byteLength);
    expect(Buffer.compare(bytes, Buffer.from(first.buffer, first.byteOffset, first.byteLength))).toBe(0);
    // Its sources are not written separately (no run-time launch reads them).
    expect(m.weights.tensors.some((t) => t.name === 'm.double_stream_modulation_img.linear.weight')).toBe(false);
  });
});

describe('bf16 GEMM weights', () => {
  it('are the weight transposed to [N, K] and rounded to bf16', async () => {
    const model = await writeMlp(join(tmp, 'mlp-src'));
    await compileModel({ model, precision: 'bf16', out: join(tmp, 'mlp-bf16'), build: false });
    const m = read(join(tmp, 'mlp-bf16'));
    const bin = readFileSync(join(tmp, 'mlp-bf16', 'weights.bin'));
    const w1 = loadConstant(importOnnx(model).graph.constants.get('w1')!, 'w1').data as Float32Array; // [K, N]
    const entry = m.weights.tensors.find((t) => t.name === 'ab/wq')!;
    expect(entry).toMatchObject({ kind: 'bf16', shape: [MLP.hidden, MLP.width], layout: 'nk', scale: 'ab/ws' });
    const codes = new Uint16Array(bin.buffer.slice(bin.byteOffset + entry.sections.codes.offset, bin.byteOffset + entry.sections.codes.offset + entry.sections.codes.length));
    for (const [n, k] of [[0, 0], [3, 17], [MLP.hidden - 1, MLP.width - 1], [100, 200]]) {
      expect(codes[n * MLP.width + k]).toBe(f32ToBf16(w1[k * MLP.hidden + n]));
      expect(Math.abs(bf16ToF32(codes[n * MLP.width + k]) - w1[k * MLP.hidden + n])).toBeLessThan(Math.abs(w1[k * MLP.hidden + n]) / 128);
    }
  });
});

describe('structure-only flux2_dev', () => {
  it('describes every weight without a file: learned ones without bytes, inline ones with theirs', async () => {
    await compileModel({ model: fullModelPath('flux2_dev'), size: '1024x1024', shape: { txt_tokens: 512 }, out: join(tmp, 'f2'), build: false });
    const m = read(join(tmp, 'f2'));
    const w = m.weights as { absent: string; tensors: Manifest['weights']['tensors'] };
    expect(w.absent).toMatch(/structure only/);
    const names = new Set(w.tensors.flatMap((t) => [t.name, t.scale].filter(Boolean)));
    for (const l of m.launchPlan) for (const a of l.args) if (a.where === 'weight') expect(names.has(a.value), a.value).toBe(true);
    for (const t of w.tensors) {
      expect(Object.keys(t.sections)).toEqual([]);
      if (t.learned || t.kind !== 'raw') expect(t.data).toBeUndefined();
      else expect(Buffer.from(t.data!, 'base64').length).toBe(bytesFor(t.dtype as DType, t.shape.reduce((a, b) => a * b, 1)));
    }
    // 160 FP8 GEMM weights and the fused modulation's weight-only FP8 GEMV (passes/quantize/policy.ts oneRowGemms).
    expect(w.tensors.filter((t) => t.kind === 'fp8')).toHaveLength(161);
  }, 60_000);
});
