/**
 * weights.bin: every weight an artifact needs, in the layout the kernels read, written once at
 * compile time when the weights exist (structure-only exports have none: the runtime then fills
 * synthetic weights).
 *
 *   quantized GEMM weights  the output of each load-time Quantize: fp8 codes [N, K] + fp32 scale per
 *                           output channel; nvfp4 packed codes [N, K/2] + e4m3 block scales
 *                           [N, K/16] + the fp32 tensor scale (compiler/quant/weights.ts layout).
 *                           A stored [N, K] or [K, N] weight, or fuse-linear's concatenation of
 *                           such weights (row blocks), streams with bounded memory on worker threads
 *                           (compiler/quant/weights.ts); a computed weight is assembled in memory
 *                           first (up to IN_MEMORY_LIMIT elements).
 *   bf16 GEMM weights        the output of a load-time bf16 Quantize: bf16 [N, K] (its scale is 1).
 *   everything else          raw bytes as stored (bf16/f32 ...), copied in 1 MiB chunks; a value
 *                            prepared at load time is copied from its stored parts when it is row
 *                            blocks of them (fuse-linear's concatenated weight left unquantized),
 *                            else evaluated on the CPU (up to IN_MEMORY_LIMIT elements) and written
 *                            as its dtype.
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
 * manifest with the file's sha256 and the sha256 of each 256 MiB part, which the runtime checks.
 *
 * Provenance (`sources`, on every learned entry): how to rebuild each ONNX initializer the entry was
 * derived from, read off the load-time producer graph (Quantize, fuse-linear's Concat, Transpose,
 * Cast, Reshape-like ops). Take the entry as an array E — a quantized entry as its [N, K] matrix
 * (codes x per-channel scale), a raw entry in its stored shape — then for each source
 *   initializer = reshape(permute(E[box], perm), shape)
 * with box one [start, end) per axis of E, perm the axes of that block (axis j of the result is
 * axis perm[j] of E) and reshape in row-major (logical) order, as torch's E[...].permute(perm).reshape(shape).
 * An entry whose derivation cannot be written so (an arithmetic load-time op, a slice of a source, an
 * inline constant mixed in) gets `unsourced` instead: the reason, naming the node; whoever needs
 * the sources fails with it (weightSources()).
 */
import { sha256FileParts } from './hash.ts';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { fail } from './errors.ts';
import { bf16ToF32, bitsOf, f32ToBf16 } from './ir/dtype.ts';
import type { Graph, Node } from './ir/graph.ts';
import { numel, producers } from './ir/graph.ts';
import { Tensor } from './ir/tensor.ts';
import { loadTimeNodes } from './launches.ts';
import { loadConstant } from './onnx/constants.ts';
import { lookupOp } from './ops/registry.ts';
import { quantizeFp8, quantizeNvfp4, relativeL2Error, dequantizeFp8, dequantizeNvfp4 } from './quant/bulk.ts';
import { type ExternalWeight, quantizeWeight, quantizedLayout, type StackedWeight } from './quant/weights.ts';

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
  /** Learned entries: how to rebuild each source initializer from the entry (header, "Provenance"). */
  sources?: WeightSource[];
  /** Learned entries whose derivation `sources` cannot describe: why, naming the node. */
  unsourced?: string;
  /**
   * A learned entry another module of the same pipeline artifact holds the same (sameWeight: the
   * transformer beside its batch-2 and shorter-text twins, compileModel `weightsFrom`): no bytes here;
   * the runtime reads that module's device copy (runtime/gpu/model.ts weightsFrom). A learned entry
   * the donor lacks (a table sliced for a shorter text) is the module's own, as in any module.
   */
  shared?: true;
}
/** Whether two modules' entries describe the same weight (name, kind, type, shape, scales, layout, provenance): one may read the other's bytes. */
export function sameWeight(a: WeightEntry, b: WeightEntry): boolean {
  const key = (t: WeightEntry) => JSON.stringify([t.name, t.kind, t.dtype, t.shape, t.scale ?? null, t.layout ?? null, t.sources ?? t.unsourced ?? null]);
  return key(a) === key(b);
}

/**
 * The first `shared` entry of `borrower` that `donor` lacks or describes otherwise (sameWeight), with
 * the donor's entry of that name if any; undefined when the donor holds every shared one.
 */
export function unsharedWeight(borrower: readonly WeightEntry[], donor: readonly WeightEntry[]): { entry: WeightEntry; other?: WeightEntry } | undefined {
  const theirs = new Map(donor.map((t) => [t.name, t]));
  const entry = borrower.find((t) => t.shared && !(theirs.has(t.name) && sameWeight(t, theirs.get(t.name)!)));
  return entry && { entry, other: theirs.get(entry.name) };
}

/** One initializer an entry derives from: initializer = reshape(permute(E[box], perm), shape). */
export interface WeightSource { initializer: string; box: [number, number][]; perm: number[]; shape: number[] }
/** The sources of a learned entry, or a one-line error naming why they are not known. */
export function weightSources(t: WeightEntry): WeightSource[] {
  if (t.sources) return t.sources;
  return fail(`weight '${t.name}'`, 'a learned entry whose source initializers are described (sources)', t.unsourced ?? (t.learned ? 'no provenance recorded (artifact compiled before provenance)' : 'not a learned entry'));
}

/**
 * The reference rebuild of one source from its entry E (row-major float values of shape `entryShape`):
 * reshape(permute(E[box], perm), shape), row-major. bench/gpu/same_weights.py does the same in torch.
 */
export function rebuildSource(entry: ArrayLike<number>, entryShape: number[], s: WeightSource): Float32Array {
  const rank = entryShape.length;
  if (s.box.length !== rank || s.perm.length !== rank) fail(`source '${s.initializer}'`, `a box and perm of rank ${rank}`, `${s.box.length} / ${s.perm.length}`);
  const strides = entryShape.map((_, j) => entryShape.slice(j + 1).reduce((a, b) => a * b, 1));
  const dims = s.perm.map((a) => s.box[a][1] - s.box[a][0]); // the permuted block's shape
  const count = dims.reduce((a, b) => a * b, 1);
  if (count !== s.shape.reduce((a, b) => a * b, 1)) fail(`source '${s.initializer}'`, `${count} elements (its block)`, `shape [${s.shape}]`);
  const out = new Float32Array(count);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < count; o++) {
    let at = 0;
    for (let j = 0; j < rank; j++) at += (s.box[s.perm[j]][0] + idx[j]) * strides[s.perm[j]];
    out[o] = entry[at];
    for (let j = rank - 1; j >= 0 && ++idx[j] === dims[j]; j--) idx[j] = 0;
  }
  return out;
}

/**
 * The file, its size and sha256, and the sha256 of each WEIGHT_PART_BYTES range in order (`parts`: the
 * runtime checks those on several threads while it uploads the file, runtime/gpu/weights-check.ts).
 */
export interface WeightsIndex { file: string; bytes: number; sha256: string; parts?: { bytes: number; sha256: string[] }; tensors: WeightEntry[] }

/** The size of weights.bin's hashed parts (the last may be shorter). */
export const WEIGHT_PART_BYTES = 256 << 20;
/** A structure-only export: no file; learned entries carry no bytes (the runtime synthesises them). */
export interface WeightsDescription { absent: string; tensors: WeightEntry[] }

const ALIGN = 256;
const IN_MEMORY_LIMIT = 64e6; // elements of a weight assembled in memory (one that is not row blocks of stored weights)
const roundUp = (v: number) => Math.ceil(v / ALIGN) * ALIGN;

/** True when every external weight file of the graph exists (a structure-only export has none). */
export function weightsPresent(graph: Graph, exists: (p: string) => boolean): boolean {
  return [...graph.constants.values()].every((c) => c.source.kind !== 'external' || exists(c.source.path));
}

/**
 * evaluate() for a weight that is not row blocks of stored weights, refused before it is assembled
 * when over IN_MEMORY_LIMIT elements (a weight that size in memory would exhaust the machine first).
 */
function evaluateBounded(graph: Graph, value: string, producer: Map<string, number>, unsourced: string | undefined): Tensor {
  const type = graph.types.get(value) as unknown as { dtype: string; shape: number[] };
  if (numel(type.shape) > IN_MEMORY_LIMIT) {
    fail(`weight '${value}'`, `row blocks of stored weights (streamed), or a value computed in memory of at most ${IN_MEMORY_LIMIT} elements`, `${type.dtype}[${type.shape}] (${unsourced ?? 'not row blocks'})`);
  }
  return evaluate(graph, value, producer);
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
  return copyBytes(fd, offset, c.source, name);
}

/** Copies `length` bytes of external data at `src` into weights.bin at `offset`, 1 MiB at a time. */
function copyBytes(fd: number, offset: number, { path, offset: src, length }: { path: string; offset: number; length: number }, name: string): number {
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

const SAME_VALUES = new Set(['Cast', 'Identity']);
const RESHAPES = new Set(['Reshape', 'Unsqueeze', 'Squeeze', 'Flatten']);

/**
 * The provenance of an entry E of shape `shape` whose value is `value` = permute(E, perm0) (a
 * quantized entry: its Quantize's source, perm0 [1, 0] when that source is [K, N]): walks the
 * load-time producers back to the external initializers (header, "Provenance").
 */
function provenance(graph: Graph, producer: Map<string, number>, value: string, shape: number[], perm0: number[]): Pick<WeightEntry, 'sources' | 'unsourced'> {
  const sources: WeightSource[] = [];
  const typeOf = (v: string) => graph.types.get(v) as unknown as { shape: number[] } | undefined;
  class Unsourced extends Error {}
  const stop = (why: string): never => { throw new Unsourced(why); };
  // Invariant: v = reshape?(permute(E[box], perm)); after a reshape only value-preserving ops may follow.
  const walk = (v: string, box: [number, number][], perm: number[], reshaped: boolean): void => {
    const c = graph.constants.get(v);
    if (c) {
      if (c.source.kind !== 'external') stop(`the inline constant '${v}' is part of it`);
      const count = box.reduce((a, [s, e]) => a * (e - s), 1);
      if (count !== c.shape.reduce((a, b) => a * b, 1)) stop(`initializer '${v}' [${c.shape}] does not match its block of ${count} elements`);
      sources.push({ initializer: v, box: box.map(([s, e]) => [s, e] as [number, number]), perm: [...perm], shape: [...c.shape] });
      return;
    }
    const i = producer.get(v);
    if (i === undefined) stop(`'${v}' is neither an initializer nor computed at load time`);
    const node = graph.nodes[i!];
    const where = `load-time ${node.domain ? `${node.domain}.` : ''}${node.op} '${node.name || node.outputs[0]}'`;
    if (node.domain === '' && SAME_VALUES.has(node.op)) return walk(node.inputs[0], box, perm, reshaped);
    if (node.domain === '' && RESHAPES.has(node.op)) return walk(node.inputs[0], box, perm, true);
    if (reshaped) stop(`${where} lies behind a reshape (its inverse is not a block of the entry)`);
    if (node.domain === '' && node.op === 'Transpose') {
      const given = node.attrs.perm as number[] | undefined;
      const t = given ?? perm.map((_, j) => perm.length - 1 - j);
      const next = new Array<number>(perm.length);
      t.forEach((from, j) => (next[from] = perm[j]));
      return walk(node.inputs[0], box, next, false);
    }
    if (node.domain === '' && node.op === 'Concat') {
      const rank = perm.length;
      const axis = ((node.attrs.axis as number) + rank) % rank;
      let at = box[perm[axis]][0];
      for (const x of node.inputs) {
        const size = typeOf(x)?.shape[axis];
        if (size === undefined) stop(`${where}: input '${x}' has no known shape`);
        const part = box.map(([s, e]) => [s, e] as [number, number]);
        part[perm[axis]] = [at, at + size!];
        at += size!;
        walk(x, part, perm, false);
      }
      return;
    }
    return stop(`${where} computes it (only Concat, Transpose, Cast, Identity and reshapes are inverted)`);
  };
  try {
    walk(value, shape.map((d) => [0, d] as [number, number]), perm0, false);
    return { sources };
  } catch (e) {
    if (e instanceof Unsourced) return { unsourced: e.message };
    throw e;
  }
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

/** `donor`: another module's entries; a learned entry it holds the same (sameWeight) is marked `shared`, not written. */
function sharing(donor: readonly WeightEntry[] | undefined): (described: WeightEntry) => boolean {
  const theirs = new Map((donor ?? []).map((t) => [t.name, t]));
  return (t) => t.learned && theirs.has(t.name) && sameWeight(t, theirs.get(t.name)!);
}

const STREAMED_TYPES: readonly string[] = ['bfloat16', 'float16', 'float32'];

/**
 * A weight value (a quantizer's source, or a raw load-time value) as row blocks of external
 * initializers, when it is exactly that: each source
 * a block of whole rows taken in order (identity perm), stored in the value's own dtype (so no
 * rounding Cast is skipped), the blocks tiling the rows. A plain stored [N, K] weight is one block.
 * With `allowTransposed` (the quantizers, which stream a stored [K, N] weight's columns as rows), a
 * part may be an initializer holding its rows transposed (perm [1, 0]: a folded transpose). Anything
 * else (a column block, a reshaped part, an inline part): undefined, and the value is evaluated in
 * memory.
 */
function rowBlocks(graph: Graph, name: string, dtype: string, sources: WeightSource[] | undefined, rows: number, cols: number, allowTransposed = false): StackedWeight | undefined {
  if (!sources?.length || !STREAMED_TYPES.includes(dtype)) return undefined;
  const parts: ExternalWeight[] = [];
  let row = 0;
  for (const s of [...sources].sort((a, b) => a.box[0][0] - b.box[0][0])) {
    const c = graph.constants.get(s.initializer);
    if (!c || c.source.kind !== 'external' || c.dtype !== dtype || s.box.length !== 2) return undefined;
    const [[r0, r1], [c0, c1]] = s.box;
    if (r0 !== row || c0 !== 0 || c1 !== cols) return undefined;
    // Identity: the initializer holds the rows as they are; [1, 0]: it holds them transposed, stored [K, n_i].
    const transposed = s.perm[0] === 1 && s.perm[1] === 0;
    if (!transposed && !(s.perm[0] === 0 && s.perm[1] === 1)) return undefined;
    if (transposed && (c.shape.length !== 2 || c.shape[0] !== cols || c.shape[1] !== r1 - r0 || !allowTransposed)) return undefined;
    parts.push({
      name: s.initializer, dtype: c.dtype as ExternalWeight['dtype'], shape: [r1 - r0, cols], path: c.source.path, offset: c.source.offset, length: c.source.length,
      ...(transposed ? { transposed: true } : {}),
    });
    row = r1;
  }
  return row === rows ? { name, parts } : undefined;
}

/** Writes weights.bin at `path` and returns its index. `donor`: see sharing(). */
export async function writeWeights(path: string, graph: Graph, donor?: readonly WeightEntry[]): Promise<WeightsIndex> {
  const { quantizers, raw, learned, producer } = runtimeWeights(graph);
  const shares = sharing(donor);
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
      const from = common.learned ? provenance(graph, producer, source, [rows, cols], axis === 1 ? [0, 1] : [1, 0]) : {};
      const described: WeightEntry = { ...common, dtype: (graph.types.get(source) as unknown as { dtype: string }).dtype, shape: [rows, cols], sections: {}, ...from };
      if (shares(described)) {
        tensors.push({ ...described, shared: true });
        continue;
      }
      const stacked = rowBlocks(graph, source, described.dtype, from.sources, rows, cols, format !== 'bf16');
      if (stacked && format === 'bf16' && stacked.parts.every((p) => p.dtype === 'bfloat16')) {
        // bf16 "quantization" of bf16 rows: their bytes as stored.
        const codes = { offset: roundUp(end), length: rows * cols * 2 };
        let at = codes.offset;
        for (const part of stacked.parts) at += copyBytes(fd, at, part, part.name);
        entry = { ...common, dtype: described.dtype, shape: [rows, cols], relL2: 0, sections: { codes }, ...from };
        end = codes.offset + codes.length;
      } else if (stacked && format !== 'bf16') {
        // Streaming: a stored [N, K] weight, or row blocks of stored weights (fuse-linear's concatenations).
        const stats = await quantizeWeight(stacked, format, fd, end, { align: ALIGN });
        const l = stats.layout;
        entry = { ...common, dtype: described.dtype, shape: [rows, cols], relL2: stats.relL2, sections: { codes: l.codes, scales: l.scales, ...(l.globalScale ? { global: l.globalScale } : {}) }, ...from };
        end = l.end;
      } else {
        const t = evaluateBounded(graph, source, producer, from.unsourced);
        // Orient to [N, K] (K along axis `axis`).
        const src = t.toFloat32();
        const x = axis === 1 ? src : Float32Array.from({ length: rows * cols }, (_, i) => src[(i % cols) * rows + Math.floor(i / cols)]);
        if (format === 'bf16') {
          const codes = { offset: roundUp(end), length: rows * cols * 2 };
          const halves = Uint16Array.from(x, f32ToBf16);
          writeAt(fd, codes.offset, new Uint8Array(halves.buffer));
          const relL2 = relativeL2Error(x, Float32Array.from(halves, bf16ToF32));
          entry = { ...common, dtype: t.dtype, shape: [rows, cols], relL2, sections: { codes }, ...from };
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
        entry = { ...common, dtype: t.dtype, shape: [rows, cols], relL2, sections: { codes: l.codes, scales: l.scales, ...(l.globalScale ? { global: l.globalScale } : {}) }, ...from };
        end = l.end;
      }
      tensors.push(entry);
    }
    for (const name of raw) {
      if (donor && learned(name)) {
        const type = graph.types.get(name) as unknown as { dtype: string; shape: number[] };
        const described: WeightEntry = { name, kind: 'raw', dtype: type.dtype, shape: [...type.shape], learned: true, sections: {}, ...provenance(graph, producer, name, [...type.shape], type.shape.map((_, j) => j)) };
        if (shares(described)) {
          tensors.push({ ...described, shared: true });
          continue;
        }
      }
      const offset = roundUp(end);
      const c = graph.constants.get(name);
      let dtype: string, shape: number[], length: number;
      if (c) {
        [dtype, shape, length] = [c.dtype, [...c.shape], copyRaw(fd, offset, graph, name)];
      } else {
        // A concatenation of stored rows (fuse-linear's weight when it stays unquantized) is copied part by part.
        const type = graph.types.get(name) as unknown as { dtype: string; shape: number[] };
        const from = type.shape.length === 2 && learned(name) ? provenance(graph, producer, name, [...type.shape], [0, 1]) : {};
        const stacked = rowBlocks(graph, name, type.dtype, from.sources, type.shape[0], type.shape[1]);
        if (stacked) {
          let at = offset;
          for (const part of stacked.parts) at += copyBytes(fd, at, part, part.name);
          [dtype, shape, length] = [type.dtype, [...type.shape], at - offset];
        } else {
          const t = evaluateBounded(graph, name, producer, from.unsourced);
          [dtype, shape, length] = [t.dtype, [...t.shape], writeAt(fd, offset, tensorBytes(t, name))];
        }
      }
      const isLearned = learned(name);
      tensors.push({ name, kind: 'raw', dtype, shape, learned: isLearned, sections: { data: { offset, length } }, ...(isLearned ? provenance(graph, producer, name, shape, shape.map((_, j) => j)) : {}) });
      end = offset + length;
    }
  } finally {
    closeSync(fd);
  }
  const { sha256, parts } = sha256FileParts(path, WEIGHT_PART_BYTES);
  return { file: 'weights.bin', bytes: end, sha256, parts: { bytes: WEIGHT_PART_BYTES, sha256: parts }, tensors };
}

/**
 * The weight entries of a structure-only export (its external data absent): learned values and
 * quantized weights without bytes (the runtime fills them with --synthetic-weights), every other
 * value (inline constants and what is prepared from them) with its bytes inline.
 */
export function describeWeights(graph: Graph, absent: string, donor?: readonly WeightEntry[]): WeightsDescription {
  const { quantizers, raw, learned, producer } = runtimeWeights(graph);
  const shares = sharing(donor);
  const mark = (t: WeightEntry): WeightEntry => (shares(t) ? { ...t, shared: true } : t);
  const tensors: WeightEntry[] = quantizers.map((q) => {
    const { format, axis, source, rows, cols } = quantizerShape(graph, q);
    const dtype = (graph.types.get(source) as unknown as { dtype: string }).dtype;
    const entry: WeightEntry = { name: q.outputs[0], kind: format, dtype, shape: [rows, cols], learned: learned(source), scale: q.outputs[1], layout: 'nk' as const, sections: {} };
    return entry.learned ? mark({ ...entry, ...provenance(graph, producer, source, [rows, cols], axis === 1 ? [0, 1] : [1, 0]) }) : entry;
  });
  for (const name of raw) {
    const type = graph.types.get(name) as unknown as { dtype: string; shape: number[] };
    const entry: WeightEntry = { name, kind: 'raw', dtype: type.dtype, shape: [...type.shape], learned: learned(name), sections: {} };
    if (!entry.learned) entry.data = Buffer.from(tensorBytes(evaluate(graph, name, producer), name)).toString('base64');
    else Object.assign(entry, provenance(graph, producer, name, entry.shape, entry.shape.map((_, j) => j)));
    tensors.push(mark(entry));
  }
  return { absent, tensors };
}
