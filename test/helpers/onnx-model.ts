/**
 * Op conformance harness: builds small ONNX models in memory (onnx-proto), runs them through our
 * importer + shape inference + reference executor and through onnxruntime-node (CPU), and compares:
 * inferred dtype/shape must equal ORT's output, values within a relative L2 tolerance (exact for
 * integer/bool outputs). Also a seeded RNG (mulberry32) for inputs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { runReference } from '../../compiler/exec/reference.ts';
import { type DType, f16ToF32, onnxCodeOf } from '../../compiler/ir/dtype.ts';
import type { Graph, ValueType } from '../../compiler/ir/graph.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { rng } from './fixtures.ts';
import { relL2 } from './numerics.ts';

const { onnx } = onnxProto;

/** A concrete tensor: feeds, initializers and tensor attributes. int64 takes bigints; numbers saturate. */
type Values = ArrayLike<number> | ArrayLike<number | bigint>;
export interface TensorSpec { dtype: DType; shape: readonly number[]; values: Values }
export const T = (dtype: DType, shape: readonly number[], values: Values): TensorSpec => ({ dtype, shape, values });
export const f32 = (shape: readonly number[], values: ArrayLike<number>) => T('float32', shape, values);
export const i64 = (shape: readonly number[], values: Values) => T('int64', shape, values);
export const bool = (shape: readonly number[], values: ArrayLike<number>) => T('bool', shape, values);

/** Attribute values: integer number -> INT, string, number[] -> INTS, float()/floats() wrappers, tensor. */
export type Attr = number | string | readonly number[] | { float: number } | { floats: readonly number[] } | TensorSpec;
export const float = (x: number) => ({ float: x });
export const floats = (xs: readonly number[]) => ({ floats: xs });

export interface NodeSpec { op: string; inputs: readonly string[]; outputs: readonly string[]; attrs?: Record<string, Attr>; name?: string }
export interface ModelSpec {
  inputs: readonly { name: string; dtype: DType; shape: readonly number[] }[];
  nodes: readonly NodeSpec[];
  initializers?: Record<string, TensorSpec>;
  outputs: readonly string[];
  opset?: number;
}

// ---- building -----------------------------------------------------------------------------------

export function toTensor(t: TensorSpec): Tensor {
  const x = Tensor.zeros(t.dtype, t.shape);
  for (let i = 0; i < t.values.length; i++) x.set(i, t.values[i]);
  return x;
}

function tensorProto(name: string, t: TensorSpec): onnxProto.onnx.ITensorProto {
  const x = toTensor(t);
  const d = x.data as Float32Array | BigInt64Array | Int32Array | Uint8Array;
  if (t.dtype !== 'float32' && t.dtype !== 'int64' && t.dtype !== 'int32' && t.dtype !== 'bool') {
    throw new Error(`helper encodes float32/int64/int32/bool tensors only, not ${t.dtype}`);
  }
  return { name, dataType: onnxCodeOf(t.dtype), dims: [...t.shape], rawData: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

function attrProto(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  if (typeof a === 'number') {
    if (!Number.isInteger(a)) throw new Error(`attribute '${name}': wrap float values in float()`);
    return { name, type: 2, i: a };
  }
  if (typeof a === 'string') return { name, type: 3, s: Buffer.from(a) };
  if (Array.isArray(a)) return { name, type: 7, ints: [...a] };
  if ('float' in a) return { name, type: 1, f: a.float };
  if ('floats' in a) return { name, type: 6, floats: [...a.floats] };
  return { name, type: 4, t: tensorProto('', a as TensorSpec) };
}

const valueInfo = (name: string, dtype: DType, shape?: readonly number[]) => ({
  name, type: { tensorType: { elemType: onnxCodeOf(dtype), shape: shape ? { dim: shape.map((d) => ({ dimValue: d })) } : undefined } },
});

export function buildModel(m: ModelSpec): Uint8Array {
  const opset = m.opset ?? 18;
  const graph = {
    name: 'test',
    input: m.inputs.map((i) => valueInfo(i.name, i.dtype, i.shape)),
    // Output types are left out: each runtime infers them, and that inference is what is compared.
    output: m.outputs.map((name) => ({ name })),
    initializer: Object.entries(m.initializers ?? {}).map(([n, t]) => tensorProto(n, t)),
    node: m.nodes.map((n, k) => ({
      opType: n.op, input: [...n.inputs], output: [...n.outputs], name: n.name ?? `${n.op}_${k}`,
      attribute: Object.entries(n.attrs ?? {}).map(([name, a]) => attrProto(name, a)),
    })),
  };
  return onnx.ModelProto.encode({
    irVersion: opset >= 23 ? 11 : 8, producerName: 'op-conformance', graph,
    opsetImport: [{ domain: '', version: opset }],
  }).finish();
}

// ---- running -------------------------------------------------------------------------------------

/** Imports `bytes` through a temp file and runs our inference; errors propagate (CompileError). */
export function importAndInfer(bytes: Uint8Array): Graph {
  const dir = mkdtempSync(join(tmpdir(), 'opconf-'));
  try {
    const file = join(dir, 'model.onnx');
    writeFileSync(file, bytes);
    return inferTypes(importOnnx(file).graph).graph;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ortTensor(t: TensorSpec): ort.Tensor {
  const x = toTensor(t);
  return new ort.Tensor(t.dtype as 'float32', x.data as Float32Array, [...t.shape]);
}

export interface Outputs {
  ours: Record<string, Tensor>;
  ort: Record<string, ort.Tensor>;
  /** Our inferred type of each graph output. */
  types: Record<string, ValueType>;
}

export async function runBoth(m: ModelSpec, feeds: Record<string, TensorSpec>): Promise<Outputs> {
  const bytes = buildModel(m);
  const graph = importAndInfer(bytes);
  const ours = runReference(graph, Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)])));
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const res = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, ortTensor(v)])));
    return { ours, ort: res, types: Object.fromEntries(m.outputs.map((o) => [o, graph.types.get(o)!])) };
  } finally {
    await session.release();
  }
}

/** ORT output values as JS numbers (float16 decoded, int64 converted). */
export function ortNumbers(t: ort.Tensor): number[] {
  if (t.type === 'float16') return Array.from(t.data as Uint16Array, f16ToF32);
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** Asserts dtype/shape inference and values agree with ORT for every output. */
export function expectAgree(r: Outputs, tol = 1e-5): void {
  for (const [name, theirs] of Object.entries(r.ort)) {
    const type = r.types[name];
    expect(type?.kind, `type of ${name}`).toBe('tensor');
    if (type?.kind !== 'tensor') return;
    expect({ dtype: type.dtype, shape: type.shape }, `inferred type of ${name}`).toEqual({ dtype: theirs.type, shape: theirs.dims });
    const mine = r.ours[name];
    expect({ dtype: mine.dtype, shape: mine.shape }, `reference output ${name}`).toEqual({ dtype: theirs.type, shape: theirs.dims });
    const a = mine.toNumbers(), b = ortNumbers(theirs);
    if (mine.dtype.startsWith('float')) {
      // NaN and ±Infinity must match exactly; finite values within the relative L2 tolerance.
      const special = (v: number) => (Number.isFinite(v) ? 0 : String(v));
      expect(a.map(special), `non-finite values of ${name}`).toEqual(b.map(special));
      const keep = (_: number, i: number) => Number.isFinite(b[i]);
      expect(relL2(a.filter(keep), b.filter(keep)), `relative L2 error of ${name}`).toBeLessThanOrEqual(tol);
    } else { // exact, int64 compared as bigints
      const exact = (d: ArrayLike<unknown>) => Array.from(d, String);
      expect(exact(mine.data as ArrayLike<unknown>), `values of ${name}`).toEqual(exact(theirs.data as ArrayLike<unknown>));
    }
  }
}

/** One model, run and compared; returns the outputs for extra assertions. */
export async function conform(m: ModelSpec, feeds: Record<string, TensorSpec>, tol = 1e-5): Promise<Outputs> {
  const r = await runBoth(m, feeds);
  expect(Object.keys(r.ort).sort()).toEqual([...m.outputs].sort());
  expectAgree(r, tol);
  return r;
}

/** One input of a single-node case: fed at run time, or an initializer when `init` is set. */
export type In = TensorSpec & { init?: boolean };
export const init = (t: TensorSpec): In => ({ ...t, init: true });

/** A single-node model: inputs named x0..; null omits an optional input; outputs y0..y(n-1). */
export async function checkNode(
  op: string, ins: readonly (In | null)[], attrs: Record<string, Attr> = {},
  opts: { outputs?: number; opset?: number; tol?: number } = {},
): Promise<Outputs> {
  const names = ins.map((t, i) => (t ? `x${i}` : ''));
  const outputs = Array.from({ length: opts.outputs ?? 1 }, (_, i) => `y${i}`);
  const feeds: Record<string, TensorSpec> = {}, initializers: Record<string, TensorSpec> = {};
  ins.forEach((t, i) => { if (t) (t.init ? initializers : feeds)[names[i]] = t; });
  const model: ModelSpec = {
    inputs: Object.entries(feeds).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })),
    nodes: [{ op, inputs: names, outputs, attrs }], initializers, outputs, opset: opts.opset,
  };
  return conform(model, feeds, opts.tol);
}

// ---- seeded inputs ---------------------------------------------------------------------------------

/** mulberry32, shared with the fixture helpers. */
export const mulberry32 = rng;

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) { this.next = mulberry32(seed); }
  uniform(lo = 0, hi = 1): number { return lo + (hi - lo) * this.next(); }
  normal(): number { return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next()); }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  /** float32 tensor of standard normals (or uniform in [lo, hi] when given). */
  randn(shape: readonly number[], lo?: number, hi?: number): TensorSpec {
    const n = shape.reduce((a, b) => a * b, 1);
    return f32(shape, Array.from({ length: n }, () => (lo === undefined ? this.normal() : this.uniform(lo, hi))));
  }
  ints(shape: readonly number[], lo: number, hi: number, dtype: DType = 'int64'): TensorSpec {
    return T(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => this.int(lo, hi)));
  }
  bools(shape: readonly number[], p = 0.5): TensorSpec {
    return bool(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (this.next() < p ? 1 : 0)));
  }
}
