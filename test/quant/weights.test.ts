/**
 * compiler/quant/weights.ts: streaming quantization of an external-data weight equals the in-memory
 * bulk quantizer byte for byte (bf16, f16 and f32 sources; this thread and worker threads; whole
 * rows per read and rows longer than a read; a stack of row blocks, a fused weight, equal to the
 * concatenation), reads stay bounded by the chunk size (counted), the
 * layout is the one quantizedLayout() announces, and bad input gives a CompileError naming the
 * weight.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompileError } from '../../compiler/errors.ts';
import { f32ToBf16 } from '../../compiler/ir/dtype.ts';
import { tensorFromBytes } from '../../compiler/ir/tensor.ts';
import { externalReads } from '../../compiler/onnx/constants.ts';
import { dequantizeFp8, dequantizeNvfp4, quantizeFp8, quantizeNvfp4, relativeL2Error, type SourceDType } from '../../compiler/quant/bulk.ts';
import {
  closeQuantWorkers, type ExternalWeight, quantizedLayout, quantizeWeight, quantizeWeightSync,
  type StackedWeight, type WeightFormat, type WeightQuantStats,
} from '../../compiler/quant/weights.ts';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'quant-weights-')); });
afterAll(async () => {
  await closeQuantWorkers();
  rmSync(dir, { recursive: true, force: true });
});

const N = 37, K = 96, HEADER = 100;

/** Seeded Gaussian-like values with a different scale per row, and a zero row. */
function values(n: number, k: number, seed: number): Float32Array {
  let s = seed;
  const r = (): number => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 2 ** 32; };
  const x = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const scale = 2 ** Math.floor(r() * 12 - 8);
    for (let j = 0; j < k; j++) x[i * k + j] = i === 3 ? 0 : (r() + r() + r() + r() - 2) * scale;
  }
  return x;
}

function encodeSource(x: Float32Array, dtype: SourceDType): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(x.buffer.slice(0));
  const h = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (dtype === 'bfloat16') h[i] = f32ToBf16(x[i]);
    else {
      // float16 of a value small enough (|x| < 2): sign, exponent, 10 mantissa bits, rounded.
      const v = x[i], a = Math.abs(v);
      const e = Math.max(-14, Math.floor(Math.log2(a || 1)));
      const m = Math.round(a / 2 ** (e - 10));
      h[i] = (v < 0 ? 0x8000 : 0) | (a === 0 ? 0 : e === -14 && m < 1024 ? m : ((e + 15) << 10) + (m - 1024));
    }
  }
  return new Uint8Array(h.buffer);
}

/** Writes a weights file: junk header, then the weight; returns the weight and its exact fp32 values. */
function weightFile(name: string, dtype: SourceDType, n = N, k = K, seed = 1): { w: ExternalWeight; x: Float32Array } {
  const bytes = encodeSource(values(n, k, seed), dtype);
  const path = join(dir, `${name}.bin`);
  const file = new Uint8Array(HEADER + bytes.length + 7);
  file.fill(0xab);
  file.set(bytes, HEADER);
  writeFileSync(path, file);
  const w: ExternalWeight = { name, dtype, shape: [n, k], path, offset: HEADER, length: bytes.length };
  // The exact values, decoded independently of bulk.ts.
  const x = tensorFromBytes(dtype, [n, k], bytes).data as Float32Array;
  return { w, x };
}

const OUT_OFFSET = 10;

async function streamTo(w: ExternalWeight | StackedWeight, format: WeightFormat, opts: { workers?: number; chunkBytes?: number; sync?: boolean }): Promise<{ st: WeightQuantStats; out: Uint8Array }> {
  const path = join(dir, `out-${w.name}-${format}-${opts.workers ?? 's'}-${opts.chunkBytes ?? 'd'}`);
  const fd = openSync(path, 'w');
  try {
    const st = opts.sync
      ? quantizeWeightSync(w, format, fd, OUT_OFFSET, { chunkBytes: opts.chunkBytes })
      : await quantizeWeight(w, format, fd, OUT_OFFSET, { workers: opts.workers, chunkBytes: opts.chunkBytes });
    return { st, out: new Uint8Array(readFileSync(path)) };
  } finally {
    closeSync(fd);
  }
}

const section = (out: Uint8Array, s: { offset: number; length: number }): Uint8Array => out.subarray(s.offset, s.offset + s.length);

function expectEqualsBulk(format: WeightFormat, x: Float32Array, n: number, k: number, st: WeightQuantStats, out: Uint8Array): void {
  const L = st.layout;
  expect(L).toEqual(quantizedLayout(format, n, k, OUT_OFFSET));
  expect(out.length).toBe(L.end);
  if (format === 'fp8') {
    const q = quantizeFp8(x, n, k);
    expect(Buffer.compare(section(out, L.codes), q.codes)).toBe(0);
    expect(Buffer.compare(section(out, L.scales), new Uint8Array(q.scales.buffer))).toBe(0);
    expect(st.relL2).toBeCloseTo(relativeL2Error(x, dequantizeFp8(q)), 6);
    expect(st.bytesWritten).toBe(n * k + 4 * n);
  } else {
    const q = quantizeNvfp4(x, n, k);
    expect(Buffer.compare(section(out, L.codes), q.packed)).toBe(0);
    expect(Buffer.compare(section(out, L.scales), q.blockScales)).toBe(0);
    expect(new Float32Array(section(out, L.globalScale!).slice().buffer)[0]).toBe(q.globalScale);
    expect(st.globalScale).toBe(q.globalScale);
    expect(st.relL2).toBeCloseTo(relativeL2Error(x, dequantizeNvfp4(q)), 6);
    expect(st.bytesWritten).toBe((n * k) / 2 + (n * k) / 16 + 4);
  }
  let amax = 0;
  for (const v of x) amax = Math.max(amax, Math.abs(v));
  expect(st.amax).toBe(amax);
}

describe('streaming weight quantization equals the in-memory quantizer byte for byte', () => {
  for (const dtype of ['bfloat16', 'float16', 'float32'] as const) {
    for (const format of ['fp8', 'nvfp4'] as const) {
      it(`${dtype} -> ${format}, this thread, small chunks`, async () => {
        const { w, x } = weightFile(`w_${dtype}`, dtype);
        const { st, out } = await streamTo(w, format, { sync: true, chunkBytes: 5 * K * 4 });
        expectEqualsBulk(format, x, N, K, st, out);
        expect(st.workers).toBe(0);
      });
    }
  }

  for (const format of ['fp8', 'nvfp4'] as const) {
    it(`${format} on 2 worker threads equals this thread`, async () => {
      const { w, x } = weightFile('w_workers', 'bfloat16', 64, 256, 2);
      const { st, out } = await streamTo(w, format, { workers: 2, chunkBytes: 3 * 256 * 2 });
      expect(st.workers).toBe(2);
      expectEqualsBulk(format, x, 64, 256, st, out);
      const single = await streamTo(w, format, { sync: true, chunkBytes: 3 * 256 * 2 });
      expect(Buffer.compare(out, single.out)).toBe(0);
      expect(st.bytesRead).toBe(single.st.bytesRead);
    });

    it(`${format}: rows longer than a read are quantized in segments, same bytes`, async () => {
      const { w, x } = weightFile('w_long', 'bfloat16', 5, 1024, 3);
      const { st, out } = await streamTo(w, format, { sync: true, chunkBytes: 300 }); // 150 elements -> 144-element segments
      expectEqualsBulk(format, x, 5, 1024, st, out);
      expect(st.maxReadBytes).toBeLessThanOrEqual(300);
      const perRow = Math.ceil(1024 / 144);
      expect(st.reads).toBe(5 * perRow * 2); // fp8: amax pass + codes pass per row; nvfp4: tensor amax pass + codes pass
    });
  }
});

describe('a stack of row blocks (a fused weight) streams part by part, equal to quantizing the concatenation', () => {
  // Three parts in three files and dtypes, uneven row counts, one of them longer than a read's rows.
  const stack = (): { w: StackedWeight; x: Float32Array; n: number } => {
    const parts = [weightFile('p_q', 'bfloat16', 24, 128, 11), weightFile('p_k', 'float32', 9, 128, 12), weightFile('p_v', 'float16', 31, 128, 13)];
    const n = parts.reduce((a, p) => a + p.w.shape[0], 0);
    const x = new Float32Array(n * 128);
    let at = 0;
    for (const p of parts) {
      x.set(p.x, at);
      at += p.x.length;
    }
    return { w: { name: 'fused_qkv', parts: parts.map((p) => p.w) }, x, n };
  };
  for (const format of ['fp8', 'nvfp4'] as const) {
    it(`${format}: this thread and 3 workers, the same bytes as the in-memory quantizer of the stacked rows`, async () => {
      const { w, x, n } = stack();
      const one = await streamTo(w, format, { sync: true, chunkBytes: 7 * 128 * 2 });
      expectEqualsBulk(format, x, n, 128, one.st, one.out);
      expect(one.st.name).toBe('fused_qkv');
      const many = await streamTo(w, format, { workers: 3, chunkBytes: 7 * 128 * 2 });
      expect(many.st.workers).toBe(3);
      expect(Buffer.compare(many.out, one.out)).toBe(0);
    });
  }

  it('parts of different K, or a part with a bad length, are refused naming the part', () => {
    const a = weightFile('k_a', 'bfloat16', 4, 64, 1).w, b = weightFile('k_b', 'bfloat16', 4, 96, 2).w;
    expect(() => quantizeWeightSync({ name: 'fused', parts: [a, b] }, 'fp8', 0, 0)).toThrow(/weight 'fused'.*same K \(64, from 'k_a'\).*'k_b' \[4,96\]/s);
    expect(() => quantizeWeightSync({ name: 'fused', parts: [a, { ...b, shape: [4, 64] }] }, 'fp8', 0, 0)).toThrow(/weight 'k_b'.*512 bytes.*768/s);
    expect(() => quantizeWeightSync({ name: 'fused', parts: [] }, 'fp8', 0, 0)).toThrow(/weight 'fused'.*at least one row block/);
  });
});

describe('a weight stored [K, N] (a folded transpose) streams its columns as rows', () => {
  // The same values as weightFile's [N, K], stored transposed: element (n, k) at k * N + n.
  const transposedFile = (name: string, dtype: SourceDType, n: number, k: number, seed: number): { w: ExternalWeight; x: Float32Array } => {
    const { w, x } = weightFile(`${name}_rows`, dtype, n, k, seed);
    const stored = tensorFromBytes(dtype, [n, k], new Uint8Array(readFileSync(w.path).subarray(HEADER, HEADER + w.length)));
    const t = new Float32Array(n * k);
    for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) t[c * n + r] = stored.get(r * k + c);
    const bytes = encodeSource(t, dtype);
    const path = join(dir, `${name}.bin`);
    writeFileSync(path, Buffer.concat([Buffer.alloc(HEADER, 0xab), Buffer.from(bytes)]));
    return { w: { name, dtype, shape: [n, k], path, offset: HEADER, length: bytes.length, transposed: true }, x };
  };
  for (const format of ['fp8', 'nvfp4'] as const) {
    it(`${format}: this thread and 2 workers, a stack with a row-major part, the same bytes as the in-memory quantizer`, async () => {
      const { w, x } = transposedFile(`t_${format}`, 'bfloat16', 40, 96, 21);
      const one = await streamTo(w, format, { sync: true });
      expectEqualsBulk(format, x, 40, 96, one.st, one.out);
      expect(one.st.reads).toBe((format === 'nvfp4' ? 2 : 1) * 96); // one read per stored row per pass: one block holds all 40 columns
      const two = await streamTo(w, format, { workers: 2 });
      expect(Buffer.compare(two.out, one.out)).toBe(0);
      const plain = weightFile(`t_plain_${format}`, 'float32', 8, 96, 22);
      const mixed = await streamTo({ name: 'mixed', parts: [w, plain.w] }, format, { sync: true });
      const both = new Float32Array(48 * 96);
      both.set(x);
      both.set(plain.x, 40 * 96);
      expectEqualsBulk(format, both, 48, 96, mixed.st, mixed.out);
    });
  }
});

describe('bounded reads', () => {
  it('reads whole rows in chunks of at most chunkBytes: ceil(N / rows per chunk) reads per pass', async () => {
    const { w } = weightFile('w_bounded', 'bfloat16');
    const chunkBytes = 4 * K * 2 + 50; // 4 rows of bf16
    const before = externalReads.count;
    const fp8 = await streamTo(w, 'fp8', { sync: true, chunkBytes });
    expect(fp8.st.reads).toBe(Math.ceil(N / 4));
    expect(fp8.st.maxReadBytes).toBe(4 * K * 2);
    expect(fp8.st.bytesRead).toBe(N * K * 2);
    const nv = await streamTo(w, 'nvfp4', { sync: true, chunkBytes });
    expect(nv.st.reads).toBe(2 * Math.ceil(N / 4)); // amax pass + quantize pass
    expect(nv.st.bytesRead).toBe(2 * N * K * 2);
    expect(externalReads.count - before).toBe(fp8.st.reads + nv.st.reads);
  });

  it('places the sections at aligned offsets after the given offset', () => {
    const L = quantizedLayout('nvfp4', 3, 32, 1000, 256);
    expect(L.codes).toEqual({ offset: 1024, length: 48 });
    expect(L.scales).toEqual({ offset: 1280, length: 6 });
    expect(L.globalScale).toEqual({ offset: 1536, length: 4 });
    expect(L.end).toBe(1540);
    const F = quantizedLayout('fp8', 3, 5, 0, 16);
    expect(F.codes).toEqual({ offset: 0, length: 15 });
    expect(F.scales).toEqual({ offset: 16, length: 12 });
    expect(F.end).toBe(28);
  });
});

describe('errors name the weight', () => {
  const sink = (): number => openSync(join(dir, 'sink'), 'w');

  it('missing data file', () => {
    const w: ExternalWeight = { name: 'blocks.0.ff.w1', dtype: 'bfloat16', shape: [4, 16], path: join(dir, 'nope.bin'), offset: 0, length: 128 };
    const fd = sink();
    try {
      expect(() => quantizeWeightSync(w, 'fp8', fd, 0)).toThrow(CompileError);
      expect(() => quantizeWeightSync(w, 'fp8', fd, 0)).toThrow(/nope\.bin.*blocks\.0\.ff\.w1.*no such file/);
    } finally { closeSync(fd); }
  });

  it('short data file (this thread and workers)', async () => {
    const { w } = weightFile('w_short', 'bfloat16', 4, 16);
    const short = { ...w, name: 'blocks.1.attn.q', offset: w.offset + 64 };
    const fd = sink();
    try {
      expect(() => quantizeWeightSync(short, 'fp8', fd, 0)).toThrow(/128 bytes at offset 164 for weight 'blocks\.1\.attn\.q'.*found a file of 235 bytes/);
      await expect(quantizeWeight(short, 'nvfp4', fd, 0, { workers: 2 })).rejects.toThrow(CompileError);
    } finally { closeSync(fd); }
  });

  it('K not a multiple of 16 for nvfp4 (fp8 is fine)', async () => {
    const { w } = weightFile('w_k40', 'bfloat16', 3, 40);
    const fd = sink();
    try {
      expect(() => quantizeWeightSync(w, 'nvfp4', fd, 0)).toThrow(/weight 'w_k40'.*multiple of 16.*\[3, 40\]/);
      expect(quantizeWeightSync(w, 'fp8', fd, 0).rows).toBe(3);
    } finally { closeSync(fd); }
  });

  it('wrong length or dtype', () => {
    const { w } = weightFile('w_len', 'bfloat16', 4, 16);
    const fd = sink();
    try {
      expect(() => quantizeWeightSync({ ...w, length: 100 }, 'fp8', fd, 0)).toThrow(/weight 'w_len': expected 128 bytes for bfloat16\[4, 16\]/);
      expect(() => quantizeWeightSync({ ...w, dtype: 'int8' as SourceDType }, 'fp8', fd, 0)).toThrow(/bfloat16, float16 or float32.*int8/);
    } finally { closeSync(fd); }
  });
});
