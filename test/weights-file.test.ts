/**
 * weights.bin, as the artifact carries it: each quantized GEMM weight holds exactly the codes and
 * scales in the documented layout (256-byte aligned sections, fp8 per-channel scales, nvfp4 block
 * scales and tensor scale), raw weights hold their stored bytes, and the manifest's hash matches
 * the file. (A structure-only export gets no weights.bin: test/full-graphs.test.ts.)
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileModel } from '../compiler/compile.ts';
import { type WeightEntry, sameWeight, unsharedWeight, writeWeights } from '../compiler/weights-file.ts';
import { f32ToBf16 } from '../compiler/ir/dtype.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { buildGraph } from './helpers/graph.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { externalReads, loadConstant } from '../compiler/onnx/constants.ts';
import { quantizeFp8, quantizeNvfp4 } from '../compiler/quant/bulk.ts';
import { decodeE2M1, decodeE4M3 } from '../compiler/quant/formats.ts';
import { tinyDir } from './helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'weights-'));

describe.each(['fp8', 'nvfp4'] as const)('tiny flux2 %s artifact', (precision) => {
  const out = join(tmp, precision);
  let manifest: { weights: { sha256: string; parts: { bytes: number; sha256: string[] }; tensors: WeightEntry[] } };
  let bin: Buffer;
  beforeAll(async () => {
    await compileModel({ model: tinyDir('flux2'), precision, emulate: true, out, build: false });
    manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    bin = readFileSync(join(out, 'weights.bin'));
  });

  it('is hashed in the manifest and holds every quantized GEMM weight', () => {
    expect(createHash('sha256').update(bin).digest('hex')).toBe(manifest.weights.sha256);
    // Under 256 MiB: one part, hashed as the file (runtime/gpu/weights-check.ts checks the parts; test/runtime/weights-check.test.ts has several).
    expect(manifest.weights.parts).toEqual({ bytes: 256 << 20, sha256: [manifest.weights.sha256] });
    const quantized = manifest.weights.tensors.filter((t: WeightEntry) => t.kind === precision);
    expect(quantized).toHaveLength(24);
    for (const t of manifest.weights.tensors as WeightEntry[]) {
      for (const s of Object.values(t.sections)) {
        expect(s.offset % 256).toBe(0);
        expect(s.offset + s.length).toBeLessThanOrEqual(bin.length);
      }
    }
  });

  it('decodes to finite weights, and the reported weight error is in the format\'s range', () => {
    for (const t of (manifest.weights.tensors as WeightEntry[]).filter((x) => x.kind !== 'raw')) {
      const [n, k] = t.shape;
      const codes = bin.subarray(t.sections.codes.offset, t.sections.codes.offset + t.sections.codes.length);
      const scales = bin.subarray(t.sections.scales.offset, t.sections.scales.offset + t.sections.scales.length);
      const values: number[] = [];
      if (precision === 'fp8') {
        const s = new Float32Array(scales.buffer.slice(scales.byteOffset, scales.byteOffset + scales.length));
        for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) values.push(decodeE4M3(codes[r * k + c]) * s[r]);
      } else {
        const g = bin.readFloatLE(t.sections.global.offset);
        for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) {
          const byte = codes[(r * k + c) >> 1];
          values.push(decodeE2M1(c % 2 ? byte >> 4 : byte & 15) * Math.fround(decodeE4M3(scales[r * (k / 16) + (c >> 4)]) * g));
        }
      }
      expect(values.every(Number.isFinite)).toBe(true);
      expect(t.relL2!).toBeLessThan(precision === 'fp8' ? 0.04 : 0.15);
      expect(t.relL2!).toBeGreaterThan(0);
    }
  });

  it('every quantized entry holds the in-memory quantizer\'s bytes of its sources, fused (concatenated) ones streamed included', () => {
    const graph = importOnnx(join(tinyDir('flux2'), 'model.onnx')).graph;
    let fused = 0;
    for (const t of (manifest.weights.tensors as WeightEntry[]).filter((x) => x.kind !== 'raw')) {
      const [n, k] = t.shape;
      const x = new Float32Array(n * k);
      // initializer = permute(E[box], perm), read back into E.
      for (const s of t.sources!) {
        const v = loadConstant(graph.constants.get(s.initializer)!, s.initializer).toFloat32();
        const [[r0, r1], [c0, c1]] = s.box, w = c1 - c0;
        for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) {
          x[r * k + c] = s.perm[0] === 0 ? v[(r - r0) * w + (c - c0)] : v[(c - c0) * (r1 - r0) + (r - r0)];
        }
      }
      if (t.sources!.length > 1) fused++;
      const at = (name: string) => bin.subarray(t.sections[name].offset, t.sections[name].offset + t.sections[name].length);
      if (precision === 'fp8') {
        const q = quantizeFp8(x, n, k);
        expect(Buffer.compare(at('codes'), q.codes), t.name).toBe(0);
        expect(Buffer.compare(at('scales'), new Uint8Array(q.scales.buffer)), t.name).toBe(0);
      } else {
        const q = quantizeNvfp4(x, n, k);
        expect(Buffer.compare(at('codes'), q.packed), t.name).toBe(0);
        expect(Buffer.compare(at('scales'), q.blockScales), t.name).toBe(0);
        expect(bin.readFloatLE(t.sections.global.offset), t.name).toBe(q.globalScale);
      }
    }
    expect(fused).toBeGreaterThanOrEqual(4); // the fused QKV projections (4 per double block) at least
  });

  it('raw weights hold their stored bytes', () => {
    const data = readFileSync(join(tinyDir('flux2'), 'model.onnx.data'));
    const raw = (manifest.weights.tensors as WeightEntry[]).filter((t) => t.kind === 'raw' && t.dtype === 'float32' && t.shape.length === 1 && t.shape[0] === 128);
    expect(raw.length).toBeGreaterThan(0);
    // Every raw float32 [128] vector must occur verbatim in the source file.
    for (const t of raw.slice(0, 3)) {
      const bytes = bin.subarray(t.sections.data.offset, t.sections.data.offset + t.sections.data.length);
      expect(data.indexOf(bytes)).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('unsharedWeight: may one module read another\'s learned weights', () => {
  const entry = (name: string, shape: number[], shared = true, sections = {}): WeightEntry => ({ name, kind: 'fp8', dtype: 'bfloat16', shape, learned: true, scale: `${name}/ws`, layout: 'nk', sections, ...(shared ? { shared: true as const } : {}) });
  const donor = [entry('a', [4, 8], false, { codes: { offset: 0, length: 32 } }), entry('b', [8, 8], false)];
  it('every shared entry described the same (file sections aside): none unshared; the borrower\'s own entries are not asked for', () => {
    expect(unsharedWeight([entry('a', [4, 8]), entry('t', [3, 3], false)], donor)).toBeUndefined();
  });
  it('names the first shared entry the donor lacks or describes otherwise, with the donor\'s entry', () => {
    expect(unsharedWeight([entry('a', [4, 8]), entry('b', [8, 4])], donor)).toEqual({ entry: entry('b', [8, 4]), other: donor[1] });
    expect(unsharedWeight([entry('c', [4, 8])], donor)).toEqual({ entry: entry('c', [4, 8]), other: undefined });
  });
});

describe('a module compiled over another\'s weights (compileModel weightsFrom)', () => {
  it('the tiny Qwen-Image for a 16-token text: the learned weights the transformer holds the same are shared, not written; the RoPE table sliced shorter is its own', async () => {
    const donor = join(tmp, 'qwen-donor'), borrower = join(tmp, 'qwen-t16');
    await compileModel({ model: tinyDir('qwen_image'), precision: 'fp8', out: donor, build: false });
    const read = (d: string) => JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')).weights as { bytes: number; tensors: WeightEntry[] };
    await compileModel({ model: tinyDir('qwen_image'), precision: 'fp8', out: borrower, build: false, textLength: 16, weightsFrom: read(donor).tensors });
    const [theirs, mine] = [read(donor), read(borrower)];
    const byName = new Map(theirs.tensors.map((t) => [t.name, t]));
    const shared = mine.tensors.filter((t) => t.shared), ownLearned = mine.tensors.filter((t) => t.learned && !t.shared);
    expect(shared.length).toBeGreaterThan(10);
    for (const t of shared) expect([t.sections, sameWeight(t, byName.get(t.name)!)]).toEqual([{}, true]);
    // The text positions' RoPE tables (derived from the learned pos_freqs buffer): 16 rows here, 24 in the transformer.
    expect(ownLearned.length).toBeGreaterThan(0);
    for (const t of ownLearned) {
      expect(t.shape[0]).toBe(16);
      expect(byName.get(t.name)?.shape[0]).toBe(24);
      expect(t.sections.data.length).toBeGreaterThan(0);
      // the same rows as the transformer's first 16 (the slice keeps its start): what lets synthetic weights seed them alike (runtime/gpu/model.ts)
      const bytes = (d: string, e: WeightEntry) => readFileSync(join(d, 'weights.bin')).subarray(e.sections.data.offset, e.sections.data.offset + e.sections.data.length);
      const theirsRows = bytes(donor, byName.get(t.name)!);
      const row = theirsRows.length / 24;
      expect(Buffer.compare(bytes(borrower, t), theirsRows.subarray(0, 16 * row))).toBe(0);
      expect(Buffer.compare(bytes(borrower, t), theirsRows.subarray(8 * row, 24 * row))).not.toBe(0); // rows that differ: not a vacuous match
    }
    expect(unsharedWeight(mine.tensors, theirs.tensors)).toBeUndefined();
    expect(mine.bytes).toBeLessThan(theirs.bytes / 20);
  });
});

describe('an unquantized fused weight (fuse-linear\'s Concat of stored rows) is copied part by part', () => {
  it('its bytes are the stored parts\' bytes in order, with provenance, not a value evaluated in memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rows-'));
    const parts = { q: [3, 8], k: [2, 8], v: [4, 8] } as const;
    const bytes = Object.fromEntries(Object.entries(parts).map(([n, shape], i) => [n, new Uint8Array(Uint16Array.from({ length: shape[0] * shape[1] }, (_, j) => f32ToBf16((j - 20) / (7 + i))).buffer)]));
    const file = join(dir, 'data.bin');
    writeFileSync(file, Buffer.concat([Buffer.alloc(16), ...Object.values(bytes).map((b) => Buffer.from(b))]));
    const { graph: built } = buildGraph({
      inputs: { x: ['bfloat16', [1, 8]] },
      constants: Object.fromEntries(Object.entries(parts).map(([n, shape]) => [n, Tensor.zeros('bfloat16', shape)])),
      nodes: [['Concat', ['q', 'k', 'v'], ['w'], { axis: 0 }], ['Gemm', ['x', 'w'], ['y'], { transB: 1 }]],
      outputs: ['y'],
    });
    let at = 16;
    const constants = new Map([...built.constants].map(([n, c]) => {
      const length = bytes[n].length;
      const bound = { ...c, source: { kind: 'external' as const, path: file, offset: at, length } };
      at += length;
      return [n, bound];
    }));
    const reads = externalReads.count;
    const index = await writeWeights(join(dir, 'weights.bin'), { ...built, constants });
    expect(externalReads.count).toBe(reads); // no constant was loaded to evaluate the Concat
    const w = index.tensors.find((t) => t.name === 'w')!;
    expect(w).toMatchObject({ kind: 'raw', dtype: 'bfloat16', shape: [9, 8], learned: true });
    expect(w.sources!.map((s) => [s.initializer, s.box[0]])).toEqual([['q', [0, 3]], ['k', [3, 5]], ['v', [5, 9]]]);
    const bin = readFileSync(join(dir, 'weights.bin'));
    expect(Buffer.compare(bin.subarray(w.sections.data.offset, w.sections.data.offset + w.sections.data.length), Buffer.concat(Object.values(bytes).map((b) => Buffer.from(b))))).toBe(0);
  });
});
