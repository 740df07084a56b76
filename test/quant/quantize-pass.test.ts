/**
 * Quantization end to end on the CPU simulation: the tiny Flux.2 and Qwen-Image transformers
 * compiled in fp8 and nvfp4 still match PyTorch's fp32 outputs within issue 4's bars; the precision
 * policy decides by structure, a policy file visibly changes the decisions, and bad policies or
 * precisions fail clearly. Also the Quantize op's exact per-row / per-block arithmetic.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.ts';
import { CompileError } from '../../compiler/errors.ts';
import { fullModelPath } from '../../compiler/full-models.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { dequantize, quantize } from '../../compiler/ops/quant.ts';
import { quantizeFp8, quantizeNvfp4 } from '../../compiler/quant/bulk.ts';
import { decodeE2M1, decodeE4M3 } from '../../compiler/quant/formats.ts';
import { tinyDir } from '../helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'quant-'));
// The kernels' nvcc build is exercised by test/codegen.test.ts and the CLI tests; not needed here.
const compile = (name: string, opts: Record<string, unknown>) =>
  compileModel({ model: tinyDir(name), out: join(tmp, `${name}-${JSON.stringify(opts).replace(/\W/g, '')}`), verify: tinyDir(name), build: false, ...opts });

describe.each(['flux2', 'qwen_image'])('tiny %s against PyTorch fp32', (name) => {
  it('fp8 (h100 default): cosine >= 0.995, relative L2 <= 0.08', async () => {
    const s = await compile(name, { target: 'h100' });
    expect(s.precision).toBe('fp8');
    expect(s.verify!.cosine).toBeGreaterThanOrEqual(0.995);
    expect(s.verify!.relL2).toBeLessThanOrEqual(0.08);
    expect(s.gemms.filter((g) => g.quantized).length).toBeGreaterThan(10);
    for (const g of s.gemms.filter((x) => x.quantized)) expect(g.weightRelL2!).toBeLessThan(0.05);
  });

  it('nvfp4 (b200 default): cosine >= 0.97, relative L2 <= 0.25, larger error than fp8', async () => {
    const fp4 = await compile(name, { target: 'b200' });
    const fp8 = await compile(name, { target: 'h100' });
    expect(fp4.precision).toBe('nvfp4');
    expect(fp4.verify!.cosine).toBeGreaterThanOrEqual(0.97);
    expect(fp4.verify!.relL2).toBeLessThanOrEqual(0.25);
    expect(fp4.verify!.relL2).toBeGreaterThan(fp8.verify!.relL2);
    const w4 = fp4.gemms.find((g) => g.quantized)!.weightRelL2!, w8 = fp8.gemms.find((g) => g.quantized)!.weightRelL2!;
    expect(w4).toBeGreaterThan(w8);
  });
});

describe('precision policy', () => {
  it('keeps embedders, timestep/modulation GEMMs and the final projection in high precision, by structure', async () => {
    const s = await compile('flux2', { precision: 'fp8' });
    const kept = s.gemms.filter((g) => !g.quantized);
    const reasons = kept.map((g) => g.reason.split(' (')[0]);
    // 4 timestep/guidance embedder GEMMs + the fused modulation GEMM (rows = 1), the two input
    // embedders, the final projection.
    expect(reasons.filter((r) => r === 'one row per sample')).toHaveLength(5);
    expect(reasons.filter((r) => r === 'reads a graph input')).toHaveLength(2);
    expect(reasons.filter((r) => r === 'writes the graph output')).toHaveLength(1);
  });

  it('a policy file forcing a GEMM into fp8 changes the decisions and the report names it', async () => {
    const file = join(tmp, 'force.json');
    const target = 'm.time_guidance_embed.timestep_embedder.linear_2.weight';
    writeFileSync(file, JSON.stringify({ quantize: [target] }));
    const base = await compile('flux2', { precision: 'fp8' });
    const s = await compile('flux2', { precision: 'fp8', policy: file });
    expect(s.gemms.filter((g) => g.quantized)).toHaveLength(base.gemms.filter((g) => g.quantized).length + 1);
    expect(s.gemms.find((g) => g.weights.includes(target))).toMatchObject({ quantized: true, reason: `policy quantizes '${target}'` });
  });

  // The full-size graph carries the real module names (the tiny export folded its weights into
  // anonymous constants).
  it('keeping the MLPs of flux2_dev in bf16 by name', async () => {
    const file = join(tmp, 'keep-mlp.json');
    writeFileSync(file, JSON.stringify({ keep: ['*.ff.*', '*.ff_context.*'] }));
    const model = fullModelPath('flux2_dev');
    const opts = { model, precision: 'fp8', size: '1024x1024', shape: { txt_tokens: 512 } };
    const base = await compileModel({ ...opts, build: false, out: join(tmp, 'fd-base') });
    const s = await compileModel({ ...opts, build: false, policy: file, out: join(tmp, 'fd-keep') });
    const kept = s.gemms.filter((g) => g.reason.startsWith('policy keeps'));
    expect(kept).toHaveLength(8 * 2 * 2); // 8 double blocks x (img, txt) x (in, out)
    expect(s.gemms.filter((g) => g.quantized)).toHaveLength(base.gemms.filter((g) => g.quantized).length - kept.length);
  });

  it('attention in fp8 (Q·Kᵀ per 128-token block) is an option that changes the result slightly', async () => {
    const file = join(tmp, 'attn.json');
    writeFileSync(file, JSON.stringify({ attention: 'fp8' }));
    const base = await compile('flux2', { precision: 'fp8' });
    const s = await compile('flux2', { precision: 'fp8', policy: file });
    expect(s.passes.find((p) => p.name === 'quantize')!.rewrites['FusedAttention => fp8 Q·Kᵀ']).toBe(6);
    expect(s.verify!.relL2).not.toBe(base.verify!.relL2);
    expect(s.verify!.cosine).toBeGreaterThanOrEqual(0.995);
  });

  it('a pattern matching no GEMM is an error naming it', async () => {
    const file = join(tmp, 'typo.json');
    writeFileSync(file, JSON.stringify({ keep: ['*transformer_blockz*'] }));
    await expect(compile('flux2', { precision: 'fp8', policy: file })).rejects.toThrow(CompileError);
    await expect(compile('flux2', { precision: 'fp8', policy: file })).rejects.toThrow(/transformer_blockz/);
  });

  it('nvfp4 on h100 needs an explicit --emulate', async () => {
    await expect(compile('flux2', { target: 'h100', precision: 'nvfp4' })).rejects.toThrow(/--emulate/);
    expect((await compile('flux2', { target: 'h100', precision: 'nvfp4', emulate: true })).precision).toBe('nvfp4');
  });
});

describe('Quantize op arithmetic', () => {
  it('the reference op and the streaming weight quantizer (bulk.ts) agree code for code', async () => {
    const rows = 8, cols = 64;
    const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.fround(Math.sin(i * 12.9898) * 43758.5453 % 1 * (1 + (i % 7))));
    const x = new Tensor('float32', [rows, cols], values);
    const [q8, s8] = quantize(x, 'fp8', 1);
    const b8 = quantizeFp8(values, rows, cols);
    expect(s8.toNumbers()).toEqual([...b8.scales]);
    expect(q8.toNumbers()).toEqual([...b8.codes].map(decodeE4M3));
    const [q4, s4] = quantize(x, 'nvfp4', 1);
    const b4 = quantizeNvfp4(values, rows, cols);
    const effective = [...b4.blockScales].map((c) => Math.fround(decodeE4M3(c) * b4.globalScale));
    expect(s4.toNumbers()).toEqual(effective);
    const nibbles = [...b4.packed].flatMap((byte) => [byte & 15, byte >> 4]);
    expect(q4.toNumbers()).toEqual(nibbles.map(decodeE2M1));
  });

  it('fp8 per row: scale = amax/448, values rounded to e4m3', async () => {
    const x = Tensor.fromNumbers('float32', [2, 4], [1, -2, 0.5, 4, 0, 0, 0, 0]);
    const [q, s] = quantize(x, 'fp8', 1);
    expect(s.toNumbers()).toEqual([Math.fround(4 / 448), 1]);
    // x/scale = 112, -224, 56, 448: all representable in e4m3.
    expect(q.toNumbers()).toEqual([112, -224, 56, 448, 0, 0, 0, 0]);
    const back = dequantize(q, s, 1, 'float32').toNumbers();
    back.slice(0, 4).forEach((v, i) => expect(v).toBeCloseTo(x.get(i), 6));
  });

  it('nvfp4: 16-element blocks with e4m3 block scales under a per-tensor scale', async () => {
    const values = Array.from({ length: 32 }, (_, i) => (i < 16 ? (i - 8) * 0.5 : (i - 16) * 0.01));
    const x = Tensor.fromNumbers('float32', [1, 32], values);
    const [q, s] = quantize(x, 'nvfp4', 1);
    expect(s.shape).toEqual([1, 2]);
    const g = 4 / (448 * 6); // tensor amax is 4 (block 0's -8·0.5)
    // Block 0: amax 4 -> e4m3(4/(6g)) = 448 -> scale 448·g = 2/3; elements x/(2/3) rounded to e2m1.
    expect(s.get(0)).toBeCloseTo(448 * g, 6);
    expect(q.get(0)).toBe(-6); // -4 / (2/3) = -6
    expect(q.get(1)).toBe(-6); // -3.5/(2/3) = -5.25 -> 6 (saturating neighbour 4 or 6: 5.25 is nearer 6)
    expect(new Set(q.toNumbers().map(Math.abs)).size).toBeLessThanOrEqual(8);
  });
});
