/**
 * The ONNX front end: tensors of every stored dtype (raw_data and the typed fields, float8 codes the
 * old schema does not name), model-local functions inlined, and external weights read lazily —
 * never at import, and then only the exact bytes of what is needed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { runReference } from '../compiler/exec/reference.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { externalReads, loadConstant } from '../compiler/onnx/constants.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { tinyDir } from './helpers/fixtures.ts';

const { onnx } = onnxProto;
const dir = mkdtempSync(join(tmpdir(), 'onnx-import-'));

function save(name: string, model: onnxProto.onnx.IModelProto): string {
  const file = join(dir, name);
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
  return file;
}

const vi = (name: string, elemType: number, dims: number[]) => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });

describe('tensor decoding', () => {
  it('decodes each stored dtype from raw_data and from the typed fields', () => {
    const raw = (bytes: number[]) => new Uint8Array(bytes);
    const inits: onnxProto.onnx.ITensorProto[] = [
      { name: 'f16raw', dataType: 10, dims: [3], rawData: raw([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00]) }, // 1, -2, 2^-24
      { name: 'f16int32', dataType: 10, dims: [2], int32Data: [0x3555, 0x7c00] }, // 0.333251953125, +inf
      { name: 'bf16raw', dataType: 16, dims: [2], rawData: raw([0x80, 0x3f, 0x49, 0x40]) }, // 1, 3.140625
      { name: 'e4m3', dataType: 17, dims: [4], rawData: raw([0x7e, 0x01, 0xb8, 0x7f]) }, // 448, 2^-9, -1, NaN
      { name: 'e5m2', dataType: 19, dims: [3], rawData: raw([0x7b, 0x7c, 0x3c]) }, // 57344, inf, 1
      { name: 'i64', dataType: 7, dims: [3], int64Data: [-1, 0, '9007199254740993'] as unknown as number[] },
      { name: 'boolraw', dataType: 9, dims: [3], rawData: raw([1, 0, 1]) },
      { name: 'f32', dataType: 1, dims: [2], floatData: [0.5, -1.25] },
    ];
    const file = save('dtypes.onnx', {
      irVersion: 10, opsetImport: [{ domain: '', version: 18 }],
      graph: { name: 'g', initializer: inits, node: [{ opType: 'Identity', input: ['f32'], output: ['y'] }], input: [], output: [{ name: 'y' }] },
    });
    const { graph } = importOnnx(file);
    const value = (n: string) => loadConstant(graph.constants.get(n)!, n).toNumbers();
    expect(value('f16raw')).toEqual([1, -2, 2 ** -24]);
    expect(value('f16int32')).toEqual([0.333251953125, Infinity]);
    expect(value('bf16raw')).toEqual([1, 3.140625]);
    const e4m3 = value('e4m3');
    expect(e4m3.slice(0, 3)).toEqual([448, 2 ** -9, -1]);
    expect(e4m3[3]).toBeNaN();
    expect(value('e5m2')).toEqual([57344, Infinity, 1]);
    expect(graph.constants.get('e4m3')!.dtype).toBe('float8e4m3fn');
    const big = loadConstant(graph.constants.get('i64')!, 'i64').data as BigInt64Array;
    expect([...big]).toEqual([-1n, 0n, 9007199254740993n]);
    expect(value('boolraw')).toEqual([1, 0, 1]);
    expect(value('f32')).toEqual([0.5, -1.25]);
  });
});

describe('model-local functions', () => {
  it('inlines each call with fresh internal names', () => {
    // local.Swish(x) = x * Sigmoid(x), called twice: y = Swish(Swish(x)).
    const file = save('function.onnx', {
      irVersion: 10, opsetImport: [{ domain: '', version: 18 }, { domain: 'local', version: 1 }],
      functions: [{
        name: 'Swish', domain: 'local', input: ['X'], output: ['Y'], opsetImport: [{ domain: '', version: 18 }],
        node: [{ opType: 'Sigmoid', input: ['X'], output: ['s'] }, { opType: 'Mul', input: ['X', 's'], output: ['Y'] }],
      }],
      graph: {
        name: 'g', input: [vi('x', 1, [4])], output: [{ name: 'y' }],
        node: [{ opType: 'Swish', domain: 'local', input: ['x'], output: ['h'] }, { opType: 'Swish', domain: 'local', input: ['h'], output: ['y'] }],
      },
    });
    const { graph } = inferTypes(importOnnx(file).graph);
    expect(graph.nodes.map((n) => n.op)).toEqual(['Sigmoid', 'Mul', 'Sigmoid', 'Mul']);
    expect(new Set(graph.nodes.flatMap((n) => n.outputs)).size).toBe(4);
    const x = [-2, -0.5, 0.5, 3];
    const swish = (v: number) => v / (1 + Math.exp(-v));
    const y = runReference(graph, { x: Tensor.fromNumbers('float32', [4], x) }).y.toNumbers();
    y.forEach((v, i) => expect(v).toBeCloseTo(swish(swish(x[i])), 6));
  });
});

describe('external data', () => {
  it('reads no weight bytes at import, and only small integer constants during inference', () => {
    const before = { ...externalReads };
    const { graph } = importOnnx(join(tinyDir('flux2'), 'model.onnx'));
    expect(externalReads.count).toBe(before.count);
    const external = [...graph.constants.values()].filter((c) => c.source.kind === 'external');
    expect(external.length).toBeGreaterThan(40);
    inferTypes(graph);
    const intConstants = external.filter((c) => c.dtype === 'int64');
    expect(externalReads.count - before.count).toBe(intConstants.length);
    expect(externalReads.bytes - before.bytes).toBeLessThan(4096);
  });
});
