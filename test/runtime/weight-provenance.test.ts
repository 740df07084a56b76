/**
 * Weight provenance (compiler/weights-file.ts, "Provenance"): every learned entry says how to
 * rebuild each ONNX initializer it derives from. Checked on the tiny fixtures' real artifacts
 * (quantized entries dequantized from weights.bin, rebuilt per source, against the initializers
 * read from the export: within the fp8 weight error, raw entries bit for bit), on a hand-made
 * graph with a transposed fusion (exact), and for a derivation it cannot describe (the error
 * names the node).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { loadConstant } from '../../compiler/onnx/constants.ts';
import { decodeE4M3 } from '../../compiler/quant/formats.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { type WeightEntry, describeWeights, rebuildSource, weightSources } from '../../compiler/weights-file.ts';
import { buildGraph } from '../helpers/graph.ts';
import { tinyDir } from '../helpers/fixtures.ts';
import { relL2 } from '../helpers/numerics.ts';

const tmp = mkdtempSync(join(tmpdir(), 'provenance-'));

/** An entry's values as the kernels see them: fp8 codes x per-channel scale, raw values as stored. */
function entryValues(t: WeightEntry, bin: Buffer): Float32Array {
  const bytes = (name: string) => bin.subarray(t.sections[name].offset, t.sections[name].offset + t.sections[name].length);
  if (t.kind === 'fp8') {
    const [n, k] = t.shape;
    const codes = bytes('codes');
    const scales = new Float32Array(Uint8Array.from(bytes('scales')).buffer);
    return Float32Array.from({ length: n * k }, (_, i) => decodeE4M3(codes[i]) * scales[Math.floor(i / k)]);
  }
  if (t.kind !== 'raw') throw new Error(`kind ${t.kind} not read here`);
  const count = t.shape.reduce((a, b) => a * b, 1);
  const raw = Uint8Array.from(bytes('data'));
  if (t.dtype === 'float32') return new Float32Array(raw.buffer, 0, count);
  if (t.dtype === 'bfloat16') return Float32Array.from(new Uint16Array(raw.buffer, 0, count), (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]);
  throw new Error(`dtype ${t.dtype} not read here`);
}

describe.each(['flux2', 'qwen_image'])('tiny %s fp8 artifact: sources rebuild the initializers', (model) => {
  const out = join(tmp, model);
  let tensors: WeightEntry[];
  let bin: Buffer;
  let graph: ReturnType<typeof importOnnx>['graph'];
  beforeAll(async () => {
    await compileModel({ model: tinyDir(model), precision: 'fp8', out, build: false });
    tensors = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).weights.tensors;
    bin = readFileSync(join(out, 'weights.bin'));
    graph = importOnnx(join(tinyDir(model), 'model.onnx')).graph;
  });

  it('describes every learned entry but the RoPE tables, and each initializer once', () => {
    // Qwen-Image's RoPE tables are cos/sin of its frequency buffer (exported as an initializer): not
    // a block of any initializer, so unsourced, naming the op.
    const tables = tensors.filter((t) => t.learned && /\/(cos|sin)[01]$/.test(t.name));
    expect(tables.length).toBe(model === 'qwen_image' ? 4 : 0);
    for (const t of tables) expect(t.unsourced).toMatch(/^load-time \w+ '.+'/);
    const learned = tensors.filter((t) => t.learned && !tables.includes(t));
    expect(learned.length).toBeGreaterThan(10);
    const seen = new Map<string, string>();
    for (const t of learned) {
      expect(t.unsourced).toBeUndefined();
      for (const s of weightSources(t)) {
        expect(graph.constants.get(s.initializer)?.source.kind, s.initializer).toBe('external');
        expect(seen.has(s.initializer), `${s.initializer} in ${t.name} and ${seen.get(s.initializer)}`).toBe(false);
        seen.set(s.initializer, t.name);
      }
    }
    // Fusions and transposed layouts are both exercised by these exports.
    expect(learned.some((t) => t.sources!.length > 1)).toBe(true);
    expect(learned.some((t) => t.kind === 'fp8' && t.sources!.some((s) => s.perm[0] === 1))).toBe(true);
  });

  it('rebuilds each initializer from the stored entry (fp8 within its weight error, raw exactly)', () => {
    let fp8 = 0, raw = 0;
    for (const t of tensors.filter((x) => x.learned && !x.unsourced)) {
      const e = entryValues(t, bin);
      for (const s of weightSources(t)) {
        const original = loadConstant(graph.constants.get(s.initializer)!, s.initializer).toFloat32();
        const rebuilt = rebuildSource(e, t.shape, s);
        expect([...s.shape]).toEqual([...graph.constants.get(s.initializer)!.shape]);
        if (t.kind === 'fp8') {
          // Per-channel e4m3 keeps about 2-3 %; a wrong block or orientation gives about 1.4 (independent weights).
          expect(relL2(rebuilt, original), `${t.name} <- ${s.initializer}`).toBeLessThan(0.05);
          fp8++;
        } else {
          expect(rebuilt, `${t.name} <- ${s.initializer}`).toEqual(Float32Array.from(original));
          raw++;
        }
      }
    }
    expect(fp8).toBeGreaterThan(10);
    expect(raw).toBeGreaterThan(3);
  });
});

describe('provenance on a hand-made graph', () => {
  // W = Concat(A, B) along rows, used transposed (Transpose then MatMul): the entry is W^T [4, 5].
  const a = Tensor.fromNumbers('float32', [3, 4], Array.from({ length: 12 }, (_, i) => i + 1));
  const b = Tensor.fromNumbers('float32', [2, 4], Array.from({ length: 8 }, (_, i) => -(i + 1)));
  const c = Tensor.fromNumbers('float32', [5, 2], Array.from({ length: 10 }, (_, i) => i / 2));
  const s = Tensor.fromNumbers('float32', [], [2]);
  const { graph } = buildGraph({
    inputs: { x: ['float32', [2, 4]], z: ['float32', [2, 5]] },
    constants: { A: a, B: b, C: c, S: s },
    nodes: [
      ['Concat', ['A', 'B'], ['W'], { axis: 0 }],
      ['Transpose', ['W'], ['WT'], { perm: [1, 0] }],
      ['MatMul', ['x', 'WT'], ['y']],
      ['Mul', ['C', 'S'], ['CS']],
      ['MatMul', ['z', 'CS'], ['u']],
    ],
    outputs: ['y', 'u'],
  });
  // As in a structure-only export: the weights are external (learned), the scalar S inline.
  for (const name of ['A', 'B', 'C']) {
    const k = graph.constants.get(name)!;
    (graph.constants as Map<string, typeof k>).set(name, { ...k, source: { kind: 'external', path: '/nonexistent', offset: 0, length: 4 * a.size } });
  }
  const d = describeWeights(graph, 'structure only');
  const entry = (name: string) => d.tensors.find((t) => t.name === name)!;

  it('inverts Concat and Transpose into blocks of the entry', () => {
    const wt = entry('WT');
    expect(wt.learned).toBe(true);
    expect(wt.sources).toEqual([
      { initializer: 'A', box: [[0, 4], [0, 3]], perm: [1, 0], shape: [3, 4] },
      { initializer: 'B', box: [[0, 4], [3, 5]], perm: [1, 0], shape: [2, 4] },
    ]);
    // The entry's values, computed here: WT[i][j] = W[j][i].
    const w = [...a.toFloat32(), ...b.toFloat32()];
    const e = Float32Array.from({ length: 20 }, (_, k) => w[(k % 5) * 4 + Math.floor(k / 5)]);
    expect([...rebuildSource(e, wt.shape, wt.sources![0])]).toEqual([...a.toFloat32()]);
    expect([...rebuildSource(e, wt.shape, wt.sources![1])]).toEqual([...b.toFloat32()]);
  });

  it('names the node it cannot invert, and weightSources fails with it', () => {
    const cs = entry('CS');
    expect(cs.learned).toBe(true);
    expect(cs.sources).toBeUndefined();
    expect(cs.unsourced).toMatch(/load-time Mul .* computes it/);
    expect(() => weightSources(cs)).toThrow(/Mul/);
  });
});
