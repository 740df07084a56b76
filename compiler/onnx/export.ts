/**
 * Writes a re-specialised graph (compiler/ir/resize.ts) back as ONNX, so onnxruntime — the CPU
 * executor — runs a pipeline at every size its artifact was compiled for, not only the export's.
 *
 * The source model is patched, not re-serialised: each IR node that stands for a node of the file
 * (the same first output and operator) keeps that node's attributes with the IR's inputs; nodes the
 * re-specialisation added (Concat, Slice, Gather of Qwen-Image's RoPE tables) are written with their
 * integer attributes; constants it added are written inline; the inputs and outputs get the new
 * shapes; value_info (the exporter's intermediate shapes, now stale) is dropped. External initializers
 * keep their locations, so the new file goes in the source's folder, beside its data. A graph the
 * import changed beyond that (inlined functions) is refused.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { fail } from '../errors.ts';
import { onnxCodeOf } from '../ir/dtype.ts';
import type { Graph, TensorType } from '../ir/graph.ts';
import { inferTypes } from '../ir/infer.ts';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;

export function writeRespecialisedOnnx(source: string, respecialised: Graph, out: string): void {
  writeFileSync(out, respecialisedOnnx(source, respecialised));
}

/** The bytes writeRespecialisedOnnx writes. */
export function respecialisedOnnx(source: string, respecialised: Graph): Uint8Array {
  const graph = inferTypes(respecialised).graph;
  const model = onnx.ModelProto.decode(readFileSync(source));
  const g = model.graph!;
  if ((model.functions ?? []).length) fail(source, 'a graph without model-local functions (the CPU copy at another size is written from its nodes)', `${model.functions!.length} functions`);
  const byOutput = new Map<string, NodeProto>();
  for (const n of g.node ?? []) if (n.output?.[0]) byOutput.set(n.output[0], n);
  const nodes: NodeProto[] = graph.nodes.map((n) => {
    const original = byOutput.get(n.outputs[0]);
    if (original && original.opType === n.op && (original.domain ?? '') === n.domain) return { ...original, input: [...n.inputs] };
    const attribute = Object.entries(n.attrs).map(([name, v]) => {
      if (typeof v === 'number' && Number.isInteger(v)) return { name, type: 2, i: v };
      if (Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x))) return { name, type: 7, ints: v as number[] };
      return fail(`${source}: node '${n.name}'`, 'integer attributes on a node the re-specialisation added', `attribute '${name}'`);
    });
    return { opType: n.op, domain: n.domain, input: [...n.inputs], output: [...n.outputs], name: n.name, attribute };
  });
  const had = new Set((g.initializer ?? []).map((t) => t.name!));
  const used = new Set(graph.nodes.flatMap((n) => n.inputs));
  const initializer = (g.initializer ?? []).filter((t) => used.has(t.name!));
  for (const [name, c] of graph.constants) {
    if (had.has(name) || !used.has(name)) continue;
    if (c.source.kind !== 'inline') fail(`${source}: constant '${name}'`, 'an inline constant', 'external data');
    const data = c.source.tensor.data as ArrayBufferView;
    initializer.push({ name, dataType: onnxCodeOf(c.dtype), dims: [...c.shape], rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  }
  const shaped = (vi: onnxProto.onnx.IValueInfoProto) => {
    const t = graph.types.get(vi.name!) as TensorType | undefined;
    if (!t || t.kind !== 'tensor') return vi;
    return { ...vi, type: { tensorType: { elemType: onnxCodeOf(t.dtype), shape: { dim: t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
  };
  model.graph = onnx.GraphProto.create({
    ...g, node: nodes, initializer, input: (g.input ?? []).map(shaped), output: (g.output ?? []).map(shaped), valueInfo: [],
  });
  return onnx.ModelProto.encode(model).finish();
}
