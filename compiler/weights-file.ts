/**
 * weights.bin: every weight an artifact needs, in the layout the kernels read, written once at
 * compile time when the weights exist (structure-only exports have none: the runtime then fills
 * synthetic weights).
 *
 *   quantized GEMM weights  the output of each load-time Quantize: fp8 codes [N, K] + fp32 scale per
 *                           output channel; nvfp4 packed codes [N, K/2] + e4m3 block scales
 *                           [N, K/16] + the fp32 tensor scale (compiler/quant/weights.ts layout).
 *                           A single external [N, K] weight streams with bounded memory; a fused
 *                           (concatenated) or [K, N] weight is assembled in memory first.
 *   bf16 GEMM weights        the output of a load-time bf16 Quantize: bf16 [N, K] (its scale is 1).
 *   everything else          raw bytes as stored (bf16/f32 ...), copied in 1 MiB chunks; a value
 *                            prepared at load time (e.g. fuse-linear's concatenated weight) is
 *                            evaluated on the CPU and written as its dtype.
 *
 * Which values: exactly the weights the run-time launches read (constants and load-time values,
 * never the sources a load-time node consumed). Quantized entries name their scale value
 * (`scale`) and state `layout: 'nk'`: row n holds output channel n, K contiguous, whatever the
 * graph's transB. `learned` marks values derived from external data (the model's trained weights,
 * which --synthetic-weights replaces); inline constants (shape vectors, tables) are never learned.
 * A structure-only export (external data absent) gets describeWeights(): the same entries without
 * a file, learned ones without bytes, the others' bytes inline (base64).
 *
 * Each section starts 256-byte aligned. The index (names, kinds, shapes, sections) goes into the
 * manifest with the file's sha256, which the runtime checks before loading.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { fail } from './errors.ts';
import { bitsOf, f32ToBf16 } from './ir/dtype.ts';
import type { Graph, Node } from './ir/graph.ts';
import { producers } from './ir/graph.ts';
import { Tensor } from './ir/tensor.ts';
import { loadTimeNodes } from './launches.ts';
import { loadConstant } from './onnx/constants.ts';
import { lookupOp } from './ops/registry.ts';
import { quantizeFp8, quantizeNvfp4, relativeL2Error, dequantizeFp8, dequantizeNvfp4 } from './quant/bulk.ts';
import { externalWeight, quantizeWeightSync, quantizedLayout } from './quant/weights.ts';

export interface Section { offset: number; length: number }
export interface WeightEntry {
  name: string;
  kind: 'raw' | 'fp8' | 'nvfp4' | 'bf16';
  dtype: string;
  shape: number[];
  /** Byte ranges in weights.bin (absent in a structure-only description). */
  sections: Record<string, Section>;
  /** Derived from external data (a trained weight), i.e. what --synthetic-weights replaces. */
  learned: boolean;
  /** Quantized entries: the value name of the scales (the Quantize's second output) and the layout. */
  scale?: string;
  layout?: 'nk';
  /** Structure-only descriptions: the bytes of a value that is not learned, base64. */
  data?: string;
  /** Quantized entries: the weight error of quantize -> dequantize. */
  relL2?: number;
}
export interface WeightsIndex { file: string; bytes: number; sha256: string; tensors: WeightEntry[] }
/** A structure-only export: no file; learned entries carry no bytes (the runtime synthesises them). */
export interface WeightsDescription { absent: string; tensors: WeightEntry[] }

const ALIGN = 256;
const IN_MEMORY_LIMIT = 64e6; // elements of a fused weight assembled in memory
const roundUp = (v: number) => Math.ceil(v / ALIGN) * ALIGN;

/** True when every external weight file of the graph exists (a structure-only export has none). */
export function weightsPresent(graph: Graph, exists: (p: string) => boolean): boolean {
  return [...graph.constants.values()].every((c) => c.source.kind !== 'external' || exists(c.source.path));
}

/** Evaluates a load-time value (constants and the nodes computed from them) on the CPU. */
function evaluate(graph: Graph, value: string, producer: Map<string, number>): Tensor {
  const c = graph.constants.get(value);
  if (c) return loadConstant(c, value);
  const node = graph.nodes[producer.get(value)!];
  const args = node.inputs.map((x) => (x ? evaluate(graph, x, producer) : undefined));
  const outs = lookupOp(node)!.exec(args, node) as Tensor[];
  return outs[node.outputs.indexOf(value)];
}

function writeAt(fd: number, offset: number, bytes: Uint8Array): number {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, offset + done);
  return bytes.length;
}

/** A tensor's bytes as its dtype stores them (float types other than float32/bfloat16 are not stored). */
function tensorBytes(t: Tensor, name: string): Uint8Array {
  if (t.dtype === 'bfloat16') return new Uint8Array(Uint16Array.from(t.toFloat32(), f32ToBf16).buffer);
  const d = t.data as Uint8Array;
  if (typeof (d as unknown as string[])[0] === 'string' || d.BYTES_PER_ELEMENT * 8 !== bitsOf(t.dtype)) {
    fail(`weight '${name}'`, 'a dtype weights.bin stores (float32, bfloat16, float64, integers, bool)', t.dtype);
  }
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function copyRaw(fd: number, offset: number, graph: Graph, name: string): number {
  const c = graph.constants.get(name)!;
  if (c.source.kind === 'inline') return writeAt(fd, offset, tensorBytes(c.source.tensor, name));
  const { path, offset: src, length } = c.source;
  const input = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(Math.min(length, 1 << 20));
    for (let done = 0; done < length;) {
      const n = readSync(input, chunk, 0, Math.min(chunk.length, length - done), src + done);
      if (n === 0) fail(path, `${length} bytes for weight '${name}'`, `the file ends after ${done}`);
      writeAt(fd, offset + done, chunk.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(input);
  }
  return length;
}

/**
 * The weights the run-time launches read, in first-use order: load-time Quantize nodes (entered by
 * their codes output) and raw values (constants, or load-time values such as a fused weight).
 * `learned(v)`: v derives from external data.
 */
function runtimeWeights(graph: Graph) {
  const producer = producers(graph);
  const loadTime = loadTimeNodes(graph);
  const quantizers: Node[] = [];
  const raw: string[] = [];
  const seen = new Set<string>();
  graph.nodes.forEach((n, i) => {
    if (loadTime.has(i)) return;
    for (const x of n.inputs) {
      if (!x || seen.has(x)) continue;
      const p = producer.get(x);
      if (!graph.constants.has(x) && (p === undefined || !loadTime.has(p))) continue;
      seen.add(x);
      const q = p !== undefined ? graph.nodes[p] : undefined;
      if (q && q.domain === 'dc' && q.op === 'Quantize') {
        if (!quantizers.includes(q)) quantizers.push(q);
      } else raw.push(x);
    }
  });
  const memo = new Map<string, boolean>();
  const learned = (v: string): boolean => {
    let r = memo.get(v);
    if (r === undefined) {
      const c = graph.constants.get(v);
      r = c ? c.source.kind === 'external' : graph.nodes[producer.get(v)!].inputs.some((x) => !!x && learned(x));
      memo.set(v, r);
    }
    return r;
  };
  return { quantizers, raw, learned, producer };
}

/** A load-time Quantize's format, its source and the [N, K] shape it is stored in. */
function quantizerShape(graph: Graph, q: Node) {
  const format = q.attrs.format as 'fp8' | 'nvfp4' | 'bf16';
  const shape = (graph.types.get(q.outputs[0]) as unknown as { shape: number[] }).shape;
  if (shape.length !== 2) fail(`weight '${q.inputs[0]}'`, 'a rank-2 weight to quantize', `[${shape}]`);
  const given = (q.attrs.axis as number | undefined) ?? -1;
  const axis = given < 0 ? given + 2 : given; // K's axis
  const [rows, cols] = axis === 1 ? shape : [shape[1], shape[0]];
  return { format, axis, source: q.inputs[0], rows, cols };
}

/** Writes weights.bin at `path` and returns its index. */
export function writeWeights(path: string, graph: Graph): WeightsIndex {
  const { quantizers, raw, learned, producer } = runtimeWeights(graph);
  const fd = openSync(path, 'w');
  const tensors: WeightEntry[] = [];
  let end = 0;
  try {
    for (const q of quantizers) {
      const { format, axis, source, rows, cols } = quantizerShape(graph, q);
      if (format !== 'fp8' && format !== 'nvfp4' && format !== 'bf16') fail(`Quantize of '${source}'`, 'format fp8, nvfp4 or bf16', String(format));
      const c = graph.constants.get(source);
      const common = { name: q.outputs[0], kind: format, learned: learned(source), scale: q.outputs[1], layout: 'nk' as const };
      let entry: WeightEntry;
      if (format !== 'bf16' && c && c.source.kind === 'external' && axis === 1 && c.shape.length === 2) {
        // Streaming: a stored [N, K] weight.
        const stats = quantizeWeightSync(externalWeight(source, c), format, fd, end, { align: ALIGN });
        const l = stats.layout;
        entry = { ...common, dtype: c.dtype, shape: [...c.shape], relL2: stats.relL2, sections: { codes: l.codes, scales: l.scales, ...(l.globalScale ? { global: l.globalScale } : {}) } };
        end = l.end;
      } else {
        const t = evaluate(graph, source, producer);
        if (t.size > IN_MEMORY_LIMIT) fail(`weight '${source}'`, `a fused weight of at most ${IN_MEMORY_LIMIT} elements (larger fused weights are not streamed yet)`, `${t.size}`);
        // Orient to [N, K] (K along axis `axis`).
        const src = t.toFloat32();
        const x = axis === 1 ? src : Float32Array.from({ length: rows * cols }, (_, i) => src[(i % cols) * rows + Math.floor(i / cols)]);
        if (format === 'bf16') {
          const codes = { offset: roundUp(end), length: rows * cols * 2 };
          writeAt(fd, codes.offset, new Uint8Array(Uint16Array.from(x, f32ToBf16).buffer));
          entry = { ...common, dtype: t.dtype, shape: [rows, cols], sections: { codes } };
          end = codes.offset + codes.length;
          tensors.push(entry);
          continue;
        }
        const l = quantizedLayout(format, rows, cols, end, ALIGN);
        let relL2: number;
        if (format === 'fp8') {
          const q8 = quantizeFp8(x, rows, cols);
          relL2 = relativeL2Error(x, dequantizeFp8(q8));
          writeAt(fd, l.codes.offset, q8.codes);
          writeAt(fd, l.scales.offset, new Uint8Array(q8.scales.buffer, q8.scales.byteOffset, q8.scales.byteLength));
        } else {
          const q4 = quantizeNvfp4(x, rows, cols);
          relL2 = relativeL2Error(x, dequantizeNvfp4(q4));
          writeAt(fd, l.codes.offset, q4.packed);
          writeAt(fd, l.scales.offset, q4.blockScales);
          writeAt(fd, l.globalScale!.offset, new Uint8Array(Float32Array.of(q4.globalScale).buffer));
        }
        entry = { ...common, dtype: t.dtype, shape: [rows, cols], relL2, sections: { codes: l.codes, scales: l.scales, ...(l.globalScale ? { global: l.globalScale } : {}) } };
        end = l.end;
      }
      tensors.push(entry);
    }
    for (const name of raw) {
      const offset = roundUp(end);
      const c = graph.constants.get(name);
      let dtype: string, shape: number[], length: number;
      if (c) {
        [dtype, shape, length] = [c.dtype, [...c.shape], copyRaw(fd, offset, graph, name)];
      } else {
        const t = evaluate(graph, name, producer);
        [dtype, shape, length] = [t.dtype, [...t.shape], writeAt(fd, offset, tensorBytes(t, name))];
      }
      tensors.push({ name, kind: 'raw', dtype, shape, learned: learned(name), sections: { data: { offset, length } } });
      end = offset + length;
    }
  } finally {
    closeSync(fd);
  }
  // Hash in one streaming read.
  const hash = createHash('sha256');
  const input = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let pos = 0; ;) {
      const n = readSync(input, chunk, 0, chunk.length, pos);
      if (n === 0) break;
      hash.update(chunk.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(input);
  }
  return { file: 'weights.bin', bytes: end, sha256: hash.digest('hex'), tensors };
}

/**
 * The weight entries of a structure-only export (its external data absent): learned values and
 * quantized weights without bytes (the runtime fills them with --synthetic-weights), every other
 * value (inline constants and what is prepared from them) with its bytes inline.
 */
export function describeWeights(graph: Graph, absent: string): WeightsDescription {
  const { quantizers, raw, learned, producer } = runtimeWeights(graph);
  const tensors: WeightEntry[] = quantizers.map((q) => {
    const { format, source, rows, cols } = quantizerShape(graph, q);
    const dtype = (graph.types.get(source) as unknown as { dtype: string }).dtype;
    return { name: q.outputs[0], kind: format, dtype, shape: [rows, cols], learned: learned(source), scale: q.outputs[1], layout: 'nk' as const, sections: {} };
  });
  for (const name of raw) {
    const type = graph.types.get(name) as unknown as { dtype: string; shape: number[] };
    const entry: WeightEntry = { name, kind: 'raw', dtype: type.dtype, shape: [...type.shape], learned: learned(name), sections: {} };
    if (!entry.learned) entry.data = Buffer.from(tensorBytes(evaluate(graph, name, producer), name)).toString('base64');
    tensors.push(entry);
  }
  return { absent, tensors };
}
