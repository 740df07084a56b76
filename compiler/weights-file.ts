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
 *   everything else          raw bytes as stored (bf16/f32 ...), copied in 1 MiB chunks.
 *
 * Each section starts 256-byte aligned. The index (names, kinds, shapes, sections) goes into the
 * manifest with the file's sha256, which the runtime checks before loading.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { fail } from './errors.ts';
import { f32ToBf16 } from './ir/dtype.ts';
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
  kind: 'raw' | 'fp8' | 'nvfp4';
  dtype: string;
  shape: number[];
  sections: Record<string, Section>;
  /** Quantized entries: the weight error of quantize -> dequantize. */
  relL2?: number;
}
export interface WeightsIndex { file: string; bytes: number; sha256: string; tensors: WeightEntry[] }

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

function copyRaw(fd: number, offset: number, graph: Graph, name: string): number {
  const c = graph.constants.get(name)!;
  if (c.source.kind === 'inline') {
    const t = c.source.tensor;
    if (c.dtype === 'bfloat16') return writeAt(fd, offset, new Uint8Array(Uint16Array.from(t.toFloat32(), f32ToBf16).buffer));
    if (t.data instanceof Float32Array && c.dtype !== 'float32') fail(`weight '${name}'`, 'an inline constant of a dtype weights.bin stores', c.dtype);
    const d = t.data as Uint8Array;
    return writeAt(fd, offset, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
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

/** Writes weights.bin at `path` and returns its index. */
export function writeWeights(path: string, graph: Graph): WeightsIndex {
  const producer = producers(graph);
  const loadTime = loadTimeNodes(graph);
  const quantizers: Node[] = [];
  const rawNames = new Set<string>();
  graph.nodes.forEach((n, i) => {
    if (loadTime.has(i) && n.domain === 'dc' && n.op === 'Quantize') quantizers.push(n);
  });
  // Raw constants: those read by run-time nodes or by load-time preparation other than quantization.
  const quantizedSources = new Set<number>();
  for (const q of quantizers) {
    const stack = [q.inputs[0]];
    while (stack.length) {
      const v = stack.pop()!;
      const p = producer.get(v);
      if (p !== undefined && loadTime.has(p)) { quantizedSources.add(p); stack.push(...graph.nodes[p].inputs.filter(Boolean)); }
    }
  }
  graph.nodes.forEach((n, i) => {
    if (quantizers.includes(n) || quantizedSources.has(i)) return;
    for (const x of n.inputs) if (x && graph.constants.has(x)) rawNames.add(x);
  });
  const fd = openSync(path, 'w');
  const tensors: WeightEntry[] = [];
  let end = 0;
  try {
    for (const q of quantizers) {
      const format = q.attrs.format as 'fp8' | 'nvfp4';
      if (format !== 'fp8' && format !== 'nvfp4') continue;
      const axis = (q.attrs.axis as number | undefined) ?? -1;
      const source = q.inputs[0];
      const c = graph.constants.get(source);
      let entry: WeightEntry;
      if (c && c.source.kind === 'external' && axis === 1 && c.shape.length === 2) {
        // Streaming: a stored [N, K] weight.
        const stats = quantizeWeightSync(externalWeight(source, c), format, fd, end, { align: ALIGN });
        const l = stats.layout;
        entry = { name: q.outputs[0], kind: format, dtype: c.dtype, shape: [...c.shape], relL2: stats.relL2, sections: { codes: l.codes, scales: l.scales, ...(l.globalScale ? { global: l.globalScale } : {}) } };
        end = l.end;
      } else {
        const t = evaluate(graph, source, producer);
        if (t.shape.length !== 2) fail(`weight '${source}'`, 'a rank-2 weight to quantize', `[${t.shape}]`);
        if (t.size > IN_MEMORY_LIMIT) fail(`weight '${source}'`, `a fused weight of at most ${IN_MEMORY_LIMIT} elements (larger fused weights are not streamed yet)`, `${t.size}`);
        // Orient to [N, K] (K along axis `axis`).
        const [rows, cols] = axis === 1 ? t.shape : [t.shape[1], t.shape[0]];
        const src = t.toFloat32();
        const x = axis === 1 ? src : Float32Array.from({ length: rows * cols }, (_, i) => src[(i % cols) * rows + Math.floor(i / cols)]);
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
        entry = { name: q.outputs[0], kind: format, dtype: t.dtype, shape: [rows, cols], relL2, sections: { codes: l.codes, scales: l.scales, ...(l.globalScale ? { global: l.globalScale } : {}) } };
        end = l.end;
      }
      tensors.push(entry);
    }
    for (const name of rawNames) {
      const c = graph.constants.get(name)!;
      const offset = roundUp(end);
      const length = copyRaw(fd, offset, graph, name);
      tensors.push({ name, kind: 'raw', dtype: c.dtype, shape: [...c.shape], sections: { data: { offset, length } } });
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
