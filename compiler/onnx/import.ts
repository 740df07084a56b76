/**
 * ONNX front end: ModelProto bytes -> IR Graph.
 *
 * Decodes with onnx-proto's static protobufjs code. Its schema predates float8/float4 and node
 * metadata, so dtype codes arrive as plain numbers (mapped in dtype.ts) and unknown fields are
 * skipped. Initializers become lazy Constants: inline data is decoded (it is small), external data
 * stays a (path, offset, length) reference that constants.ts reads on demand. Model-local
 * functions are inlined with fresh value names. Node output types are not taken from the file:
 * infer.ts computes them; the file's value_info is returned as `declared` for cross-checks.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { CompileError, fail } from '../errors.ts';
import { type DType, dtypeFromOnnx, bytesFor } from '../ir/dtype.ts';
import type { AttrValue, Constant, Dim, Graph, Node, ValueType } from '../ir/graph.ts';
import { tensorType } from '../ir/graph.ts';
import { Tensor, tensorFromBytes, allocate } from '../ir/tensor.ts';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type NodeProto = onnxProto.onnx.INodeProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;
type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
type FunctionProto = onnxProto.onnx.IFunctionProto;
type ModelProto = onnxProto.onnx.ModelProto;

export interface ImportResult {
  graph: Graph;
  /** Types the exporter wrote in value_info / outputs (may be partial or symbolic). */
  declared: Map<string, ValueType>;
  producer: string;
}

const toNum = (v: unknown): number => (typeof v === 'number' ? v : Number(String(v)));

export function importOnnx(file: string): ImportResult {
  let bytes: Buffer;
  try {
    if (!statSync(file).isFile()) fail(file, 'an ONNX model file', 'a directory');
    bytes = readFileSync(file);
  } catch (e) {
    if (e instanceof CompileError) throw e;
    fail(file, 'a readable ONNX model file', (e as NodeJS.ErrnoException).code ?? String(e));
  }
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    fail(file, 'an ONNX ModelProto', `undecodable data (${(e as Error).message}; truncated or not ONNX?)`);
  }
  if (!model.graph?.node?.length || !model.graph.output?.length) {
    fail(file, 'an ONNX ModelProto with a graph of nodes and outputs', 'no graph (not an ONNX model?)');
  }
  return { ...buildGraph(model, file), producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim() };
}

function buildGraph(model: ModelProto, file: string): Omit<ImportResult, 'producer'> {
  const g = model.graph!;
  const baseDir = dirname(resolve(file));
  const opset = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  if (!opset) fail(file, 'an opset_import for the default ONNX domain', 'none');

  const types = new Map<string, ValueType>();
  const constants = new Map<string, Constant>();
  for (const init of g.initializer ?? []) {
    const c = importConstant(init, baseDir, `${file}: initializer '${init.name}'`);
    constants.set(init.name!, c);
    types.set(init.name!, tensorType(c.dtype, c.shape));
  }
  const inputs: string[] = [];
  for (const vi of g.input ?? []) {
    if (constants.has(vi.name!)) continue; // IR < 4 style: initializers listed as inputs
    const t = valueInfoType(vi);
    if (!t) fail(`${file}: graph input '${vi.name}'`, 'a tensor type with a known dtype', 'none');
    types.set(vi.name!, t);
    inputs.push(vi.name!);
  }
  const declared = new Map<string, ValueType>();
  for (const vi of [...(g.valueInfo ?? []), ...g.output!]) {
    const t = valueInfoType(vi);
    if (t) declared.set(vi.name!, t);
  }

  const functions = new Map<string, FunctionProto>();
  for (const f of model.functions) functions.set(`${f.domain ?? ''}:${f.name}`, f);
  const nodes: Node[] = [];
  let fresh = 0;
  const emit = (n: NodeProto, rename: (v: string) => string, outerAttrs: Map<string, AttributeProto>) => {
    const fn = functions.get(`${n.domain ?? ''}:${n.opType}`);
    const inputsOf = (n.input ?? []).map((v) => (v ? rename(v) : ''));
    const outputsOf = (n.output ?? []).map((v) => (v ? rename(v) : ''));
    if (!fn) {
      nodes.push({
        op: n.opType!, domain: normaliseDomain(n.domain ?? ''), inputs: inputsOf, outputs: outputsOf,
        attrs: importAttrs(n.attribute ?? [], outerAttrs, `${file}: ${n.opType} node '${n.name ?? ''}'`),
        name: n.name ?? '',
      });
      return;
    }
    // Inline a model-local function: formal -> actual names, internals get a unique prefix.
    const prefix = `${fn.name}_${fresh++}/`;
    const map = new Map<string, string>();
    (fn.input ?? []).forEach((formal, i) => map.set(formal, inputsOf[i] ?? ''));
    (fn.output ?? []).forEach((formal, i) => map.set(formal, outputsOf[i] ?? ''));
    const callAttrs = new Map<string, AttributeProto>();
    for (const a of n.attribute ?? []) callAttrs.set(a.name!, resolveRef(a, outerAttrs));
    for (const inner of fn.node ?? []) emit(inner, (v) => map.get(v) ?? prefix + v, callAttrs);
  };
  for (const n of g.node!) emit(n, (v) => v, new Map());

  return {
    graph: {
      name: g.name ?? 'graph', opset: toNum(opset.version), inputs, outputs: g.output!.map((o) => o.name!),
      nodes, types, constants, file,
    },
    declared,
  };
}

const normaliseDomain = (d: string) => (d === 'ai.onnx' ? '' : d);

function resolveRef(a: AttributeProto, outer: Map<string, AttributeProto>): AttributeProto {
  if (!a.refAttrName) return a;
  const target = outer.get(a.refAttrName);
  return target ? Object.assign(Object.create(Object.getPrototypeOf(target)), target, { name: a.name }) : a;
}

function importAttrs(list: AttributeProto[], outer: Map<string, AttributeProto>, where: string): Record<string, AttrValue> {
  const attrs: Record<string, AttrValue> = {};
  for (const raw of list) {
    const a = resolveRef(raw, outer);
    if (a.refAttrName) continue; // unresolved reference: attribute left at its default
    switch (a.type) {
      case 1: attrs[a.name!] = a.f!; break;
      case 2: attrs[a.name!] = toNum(a.i); break;
      case 3: attrs[a.name!] = Buffer.from(a.s!).toString('utf8'); break;
      case 4: attrs[a.name!] = tensorOf(a.t!, where); break;
      case 6: attrs[a.name!] = [...(a.floats ?? [])]; break;
      case 7: attrs[a.name!] = (a.ints ?? []).map(toNum); break;
      case 8: attrs[a.name!] = (a.strings ?? []).map((s) => Buffer.from(s).toString('utf8')); break;
      default: fail(where, `a supported attribute type for '${a.name}'`, `type ${a.type} (graph/sparse attributes are not supported)`);
    }
  }
  return attrs;
}

function valueInfoType(vi: ValueInfoProto): ValueType | undefined {
  const tt = vi.type?.tensorType;
  if (tt) {
    const dtype = dtypeFromOnnx(tt.elemType ?? 0);
    if (!dtype) return undefined;
    const shape: Dim[] = (tt.shape?.dim ?? []).map((d, i) =>
      d.dimParam ? d.dimParam : (d as { value?: string }).value === 'dimValue' ? toNum(d.dimValue) : `?${vi.name}:${i}`);
    return tensorType(dtype, shape);
  }
  return undefined;
}

function constantDtype(t: TensorProto, where: string): DType {
  const dtype = dtypeFromOnnx(t.dataType ?? 0);
  if (!dtype) fail(where, 'a supported tensor data type', `ONNX data type code ${t.dataType}`);
  return dtype;
}

function importConstant(t: TensorProto, baseDir: string, where: string): Constant {
  const dtype = constantDtype(t, where);
  const shape = (t.dims ?? []).map(toNum);
  if (t.dataLocation === 1) {
    const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value ?? '']));
    const location = kv.get('location');
    if (!location) fail(where, "external data with a 'location'", 'none');
    const length = kv.has('length') ? Number(kv.get('length')) : bytesFor(dtype, shape.reduce((a, b) => a * b, 1));
    return { dtype, shape, source: { kind: 'external', path: resolve(baseDir, location), offset: Number(kv.get('offset') ?? 0), length } };
  }
  return { dtype, shape, source: { kind: 'inline', tensor: tensorOf(t, where) } };
}

/** Decodes an inline TensorProto (raw_data or the typed repeated fields). */
export function tensorOf(t: TensorProto, where: string): Tensor {
  const dtype = constantDtype(t, where);
  const shape = (t.dims ?? []).map(toNum);
  if (t.dataLocation === 1) fail(where, 'an inline tensor', 'external data in an attribute');
  if (t.rawData && t.rawData.length > 0) return tensorFromBytes(dtype, shape, t.rawData);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Tensor(dtype, shape, allocate(dtype, n));
  const fields: ArrayLike<unknown> =
    (dtype === 'float32' ? t.floatData
    : dtype === 'float64' ? t.doubleData
    : dtype === 'int64' ? t.int64Data
    : dtype === 'uint64' || dtype === 'uint32' ? t.uint64Data
    : dtype === 'string' ? t.stringData
    : t.int32Data) ?? []; // int32, int16, int8, uint8, uint16, bool, float16/bfloat16/float8 bit patterns
  if (fields.length !== n) fail(where, `${n} values for shape [${shape}]`, `${fields.length}`);
  if (dtype === 'string') {
    const strs = out.data as string[];
    for (let i = 0; i < n; i++) strs[i] = Buffer.from(fields[i] as Uint8Array).toString('utf8');
    return out;
  }
  if (dtype === 'int64' || dtype === 'uint64') {
    const big = out.data as BigInt64Array;
    for (let i = 0; i < n; i++) big[i] = BigInt(String(fields[i]));
    return out;
  }
  if (['float16', 'bfloat16', 'float4e2m1'].includes(dtype) || dtype.startsWith('float8')) {
    // Bit patterns in int32_data: re-pack to little-endian bytes and decode once.
    const width = dtype === 'float16' || dtype === 'bfloat16' ? 2 : 1;
    const bytes = new Uint8Array(n * width);
    for (let i = 0; i < n; i++) {
      const v = toNum(fields[i]);
      bytes[i * width] = v & 0xff;
      if (width === 2) bytes[i * width + 1] = (v >> 8) & 0xff;
    }
    return tensorFromBytes(dtype, shape, bytes);
  }
  for (let i = 0; i < n; i++) out.set(i, toNum(fields[i]));
  return out;
}
