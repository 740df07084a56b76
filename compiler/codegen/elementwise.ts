/**
 * Element-wise kernel descriptors: a launch that is a dc.FusedKernel (or a lone element-wise op)
 * becomes a typed descriptor the templates render, and nothing else (DESIGN "Style" 6); a
 * dc.SegmentedKernel (passes/fuse-horizontal.ts) becomes one descriptor per segment.
 *
 * Iteration space: the group's output shape flattened to [rows, cols] (cols = last dim). Each input
 * is addressed by its broadcast strides: a column stride (0 or 1) and, for the row index, a mixed-
 * radix decomposition over the leading dims with a stride per dim (0 where broadcast).
 * Program: the body in SSA order, each instruction an op from the snippet table with operand refs
 * ("in3", "t5") and constant attributes. Mode:
 *   flat  pure element-wise: a grid-stride loop, every value in registers;
 *   row   any row reduction (LayerNorm, RMSNorm, Softmax, per-token Quantize) or RoPE on a computed
 *         value: a persistent grid of CTAs, each looping over rows, a row value in registers.
 * A last-axis Concat (row mode only) is an instruction whose arguments are its parts' inputs, each
 * with the column window it supplies (EwInput.part); a part made by a SwiGLU in the body (its
 * prologue) is that SwiGLU's input read as gate/up halves, and the SwiGLU emits no instruction.
 */
import { fail } from '../errors.ts';
import { resolveView, type StridedView } from './views.ts';
import { type DType, dtypeFromOnnx } from '../ir/dtype.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { type Deferred, rowsAreTokens } from './dequant.ts';
import { inlineConstantAll } from '../onnx/constants.ts';
import { ROW_OPS } from '../ops/norm.ts';

export type CudaType = 'float' | 'double' | 'bf16' | 'half' | 'fp8e4m3' | 'int64' | 'int32' | 'bool' | 'uint8';

/**
 * An input as the kernel reads it: element (row, col) of the output space is at
 * sum(rowDims index * stride) + col * colStride elements from the kernel's pointer, which points at
 * the input's first element (a view's window start: compiler/codegen/plan.ts). `vector`: 8-element
 * (16-byte) loads are safe: columns contiguous, every row start and the window start 16-byte aligned.
 */
export interface EwInput {
  name: string; type: CudaType; colStride: number; rowDims: { size: number; stride: number }[]; vector: boolean; swiglu?: boolean;
  /** A part of a last-axis Concat: it supplies output columns [start, start + width), addressed
   * from column 0 of its own rows (a SwiGLU part reads gate and up halves of width each). */
  part?: { start: number; width: number };
  /** The raw output of a deferred GEMM (dequant.ts): element (row, c) is loaded · xs[row + tok0] ·
   * ws[f0 + c] (+ bias[f0 + c]); `values` are xs, ws (and the bias), passed after the inputs. */
  dequant?: EwDequant;
}
export interface EwDequant { tok0: number; f0: number; types: CudaType[]; values: string[] }
export interface EwOutput { name: string; type: CudaType; perRow: boolean }
export interface EwInstr { op: string; out: string; args: string[]; attrs: Record<string, number | string> }

export interface ElementwiseDescriptor {
  kind: 'elementwise';
  mode: 'flat' | 'row';
  rows: number;
  cols: number;
  compute: 'float' | 'double';
  inputs: EwInput[];
  outputs: EwOutput[];
  program: EwInstr[];
  /** Where each output's value comes from (an instruction result or an input). */
  results: string[];
  threads: number;
  /** Row kernels: the tuning they were rendered with (ROW_TUNING unless a benchmark varies it). */
  row?: RowTuning;
  /** Deferred GEMM outputs (roots) this kernel reads but cannot dequantize as it loads. */
  undeferrable?: string[];
}

/** Row-kernel tuning: vectors (8 elements) per thread; stages of the shared-memory ring that keeps
 * the next rows' loads in flight (at least 2 where the ring is used); CTAs per SM asked of ptxas
 * and launched (0: from the row arrays' registers, render.ts rowCtasPerSm). Chosen by measurement
 * on the H100 (bench/results/row-kernels-2026-11-25b.md): the ring against the next row prefetched
 * into registers, 2 against 3 stages, 2/4/6 vectors per thread, 1-4 CTAs per SM; a warp per row
 * (the row re-read from shared memory by each pass, shuffle reductions) lost every flux2_dev row
 * kernel to this layout and was removed (row-kernels-warp-2026-11-25b.md). */
export interface RowTuning { vectorsPerThread: number; stages: number; ctasPerSm: number }
export const ROW_TUNING: RowTuning = { vectorsPerThread: 4, stages: 2, ctasPerSm: 0 };

const CUDA_TYPE: Partial<Record<DType, CudaType>> = {
  float32: 'float', float64: 'double', bfloat16: 'bf16', float16: 'half', float8e4m3fn: 'fp8e4m3',
  int64: 'int64', int32: 'int32', bool: 'bool', uint8: 'uint8',
};

export const EW_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Exp', 'Log', 'Sin', 'Cos', 'Tanh', 'Sigmoid', 'Relu',
  'Gelu', 'Cast', 'Where', 'Clip', 'Max', 'Min', 'IsNaN', 'Not', 'And', 'Or', 'Equal', 'Greater', 'GreaterOrEqual', 'Less',
  'LessOrEqual', 'Identity', 'Silu', 'Modulate', 'SwiGLU', 'RoPE', 'LayerNormalization', 'RMSNormalization', 'Softmax', 'Quantize',
]);

function cudaType(dtype: DType, where: string): CudaType {
  const t = CUDA_TYPE[dtype];
  if (!t) fail(where, 'an element type the element-wise templates support', dtype);
  return t;
}

function shapeOf(graph: Graph, v: string): number[] {
  const t = graph.types.get(v);
  if (t?.kind !== 'tensor') throw new Error(`no tensor type for ${v}`);
  return t.shape as number[];
}

/**
 * Broadcast addressing of `shape` inside the [rows, cols] space of `outShape`. `lastScale` is how
 * many output columns one input row holds per output column (2 for SwiGLU, which reads both halves
 * of a row twice as long as its output).
 */
function addressing(shape: readonly number[], outShape: readonly number[], where: string, lastScale = 1, view?: StridedView): Pick<EwInput, 'colStride' | 'rowDims'> {
  const rank = outShape.length;
  const lead = rank - shape.length;
  const padded = [...new Array(lead).fill(1), ...shape];
  const strides: number[] = new Array(rank).fill(0);
  let acc = 1;
  for (let i = rank - 1; i >= 0; i--) {
    const logical = i === rank - 1 ? padded[i] / lastScale : padded[i];
    if (logical !== 1 && logical !== outShape[i]) fail(where, `an input broadcastable to [${outShape}]`, `[${shape}]`);
    // A view reads its window's strides; anything else is contiguous.
    strides[i] = logical === 1 ? 0 : view && i >= lead ? view.dims[i - lead].stride : acc;
    acc *= padded[i];
  }
  return {
    colStride: rank ? strides[rank - 1] : 0,
    rowDims: outShape.slice(0, -1).map((size, i) => ({ size, stride: strides[i] })),
  };
}

/** Whether 8-element loads of this input are aligned: contiguous columns, aligned rows and start. */
function vectorSafe(a: Pick<EwInput, 'colStride' | 'rowDims'>, offset: number): boolean {
  return a.colStride === 1 && offset % 8 === 0 && a.rowDims.every((d) => d.stride % 8 === 0);
}

/** Row-kernel geometry: 8-element (16-byte) vectors when the row allows, a thread count that
 * divides the row's vectors evenly with about four vectors per thread (more rows in flight per SM);
 * else one element at a time. */
export function rowGeometry(cols: number, perTarget = ROW_TUNING.vectorsPerThread): { threads: number; vec: number; per: number; exact: boolean } {
  if (cols % 8 === 0) {
    const nv = cols / 8;
    const fits = [1024, 896, 768, 640, 512, 384, 256, 128].filter((t) => nv % t === 0 && nv / t <= 8);
    if (fits.length) {
      const t = fits.sort((a, b) => Math.abs(nv / a - perTarget) - Math.abs(nv / b - perTarget) || b - a)[0];
      return { threads: t, vec: 8, per: nv / t, exact: true };
    }
  }
  const threads = Math.min(1024, Math.max(128, 2 ** Math.ceil(Math.log2(Math.max(cols, 1) / 4)) * 4));
  return { threads, vec: 1, per: Math.ceil(cols / threads), exact: cols % threads === 0 };
}

/**
 * Whether every element of `v` is 1, known at compile time: a small constant of ones held in the
 * graph, or ones through load-time Expand / Cast / Identity / Reshape (Flux.2's LayerNorm weight
 * is `Expand(1.0, [6144])`). Weights in a weights file are learned values: never read here (a
 * structure-only export has none).
 */
function constantOnes(graph: Graph, v: string, depth = 0): boolean {
  if (graph.constants.has(v)) return inlineConstantAll(graph, v, (x) => x === 1, 65536);
  if (depth > 4) return false;
  const p = graph.nodes.find((n) => n.outputs[0] === v);
  return !!p && ['Expand', 'Cast', 'Identity', 'Reshape'].includes(p.op) && p.domain === '' && constantOnes(graph, p.inputs[0], depth + 1);
}

/**
 * The descriptor of one element-wise launch (a FusedKernel or a single element-wise node).
 * `deferred`: GEMM outputs written raw (dequant.ts); an input reading one as rows of its tokens
 * gets the dequantization, any other read of one is listed in `undeferrable`.
 */
export function elementwiseDescriptor(graph: Graph, node: Node, deferred?: ReadonlyMap<string, Deferred>): ElementwiseDescriptor {
  const where = `${node.op} kernel -> ${node.outputs[0]}`;
  const body = node.body?.nodes ?? [node];
  const formal = node.body?.inputs ?? node.inputs;
  const outerOf = new Map(formal.map((f, i) => [f, node.inputs[i]]));
  const bodyOutputs = node.body?.outputs ?? node.outputs;
  const outShape = shapeOf(graph, node.outputs[0]);
  const cols = outShape.at(-1) ?? 1;
  const rows = outShape.slice(0, -1).reduce((a, b) => a * b, 1);

  const refs = new Map<string, string>();
  const inputs: EwInput[] = [];
  const undeferrable: string[] = [];
  const inputRef = (formalName: string, opts: { swiglu?: boolean; part?: { start: number; width: number } } = {}): string => {
    const key = `${formalName}${opts.swiglu ? '#swiglu' : ''}${opts.part ? `#part${opts.part.start}` : ''}`;
    const known = refs.get(key);
    if (known) return known;
    const outer = outerOf.get(formalName) ?? formalName;
    const t = graph.types.get(outer);
    if (t?.kind !== 'tensor') fail(where, `a tensor input '${outer}'`, 'none');
    const shape = t.shape as number[];
    const ref = `in${inputs.length}`;
    const view = resolveView(graph, outer, where);
    if (opts.swiglu && view.dims.at(-1)!.stride !== 1) fail(where, 'a SwiGLU input with contiguous columns', `'${outer}' (column stride ${view.dims.at(-1)!.stride})`);
    const space = opts.part ? [...outShape.slice(0, -1), opts.part.width] : outShape;
    const a = addressing(shape, space, where, opts.swiglu ? 2 : 1, view);
    const input: EwInput = { name: outer, type: cudaType(t.dtype, where), ...a, vector: vectorSafe(a, view.offset), ...(opts.swiglu ? { swiglu: true } : {}), ...(opts.part ? { part: opts.part } : {}) };
    const gemm = deferred?.get(view.root);
    if (gemm) {
      const f0 = view.offset % gemm.n, width = (opts.part?.width ?? cols) * (opts.swiglu ? 2 : 1);
      if (a.colStride === 1 && rowsAreTokens(a.rowDims, gemm.n) && f0 + width <= gemm.n) {
        const values = [gemm.xs, gemm.ws, ...(gemm.bias ? [gemm.bias] : [])];
        input.dequant = { tok0: Math.floor(view.offset / gemm.n), f0, types: values.map((v) => cudaType((graph.types.get(v) as unknown as { dtype: DType }).dtype, where)), values };
      } else undeferrable.push(view.root);
    }
    inputs.push(input);
    refs.set(key, ref);
    return ref;
  };
  const program: EwInstr[] = [];
  let mode: 'flat' | 'row' = 'flat';
  let compute: 'float' | 'double' = 'float';
  // SwiGLUs whose value is a Concat part in this body: the part's prologue (value -> its input).
  const prologue = new Map<string, string>();
  for (const n of body) {
    if (n.op !== 'Concat') continue;
    for (const x of n.inputs) {
      const p = body.find((m) => m.op === 'SwiGLU' && m.outputs[0] === x);
      if (p) prologue.set(x, p.inputs[0]);
    }
  }
  for (const n of body) {
    if (n.op === 'SwiGLU' && prologue.has(n.outputs[0])) continue;
    if (n.op === 'Concat') {
      const rank = outShape.length;
      if (![-1, rank - 1].includes((n.attrs.axis as number | undefined) ?? 0)) fail(where, 'a Concat on the last axis', `axis ${n.attrs.axis}`);
      let start = 0;
      const args = n.inputs.map((x) => {
        const swiglu = prologue.get(x);
        // Widths from the kernel's inputs (values inside the body have no type in the graph).
        const width = swiglu ? shapeOf(graph, outerOf.get(swiglu) ?? swiglu).at(-1)! / 2 : shapeOf(graph, outerOf.get(x) ?? x).at(-1)!;
        const part = { start, width };
        start += width;
        if (!swiglu && refs.has(x)) fail(where, 'Concat parts read from kernel inputs (or their SwiGLU prologue)', `'${x}', computed in the kernel`);
        return swiglu ? inputRef(swiglu, { swiglu: true, part }) : inputRef(x, { part });
      });
      if (start !== cols) fail(where, `Concat parts ${cols} columns wide in all`, `${start}`);
      n.outputs.forEach((o) => o && refs.set(o, `t${program.length}`));
      program.push({ op: 'Concat', out: `t${program.length}`, args, attrs: {} });
      continue;
    }
    if (!EW_OPS.has(n.op)) fail(where, 'element-wise ops in a fused kernel', n.op);
    if (ROW_OPS.has(n.op)) mode = 'row';
    if (n.op === 'Quantize' && ![-1, outShape.length - 1].includes((n.attrs.axis as number | undefined) ?? -1)) {
      fail(where, 'a per-token Quantize (last axis); weights are quantized at build time, not by a kernel', `axis ${n.attrs.axis}`);
    }
    // A norm's weight of constant ones is not read (x·1 = x: the same values; the template
    // multiplies by a weight only when given): its registers and a multiply per element saved
    // (Flux.2's LayerNorm+Modulate+Quantize [4608, 6144]: 37.5 -> 35.4 µs on the H100,
    // bench/results/row-kernels-2026-11-26.md).
    const ones = (x: string, i: number) => i === 1 && (n.op === 'LayerNormalization' || n.op === 'RMSNormalization') && !refs.has(x) && constantOnes(graph, outerOf.get(x) ?? x);
    const args = n.inputs.map((x, i) => (!x || ones(x, i) ? '' : refs.get(x) ?? (n.op === 'SwiGLU' ? inputRef(x, { swiglu: true }) : inputRef(x))));
    if (n.op === 'RoPE' && args[0].startsWith('t')) mode = 'row';
    const t = graph.types.get(n.outputs[0]);
    if (t?.kind === 'tensor' && t.dtype === 'float64') compute = 'double';
    const attrs: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(n.attrs)) if (typeof v === 'number' || typeof v === 'string') attrs[k] = v;
    if (n.op === 'Cast') attrs.to = cudaType(dtypeFromOnnx(n.attrs.to as number)!, where);
    n.outputs.forEach((o, k) => o && refs.set(o, `t${program.length}${k ? `_${k}` : ''}`));
    program.push({ op: n.op, out: `t${program.length}`, args, attrs });
  }
  if (program.some((i) => i.op === 'Concat') && mode !== 'row') fail(where, 'a Concat inside a row kernel (one with a row reduction)', 'a pure element-wise group');
  const outputs: EwOutput[] = node.outputs.map((o, i) => {
    const t = graph.types.get(o);
    if (t?.kind !== 'tensor') fail(where, `a tensor output '${o}'`, 'none');
    const perRow = (t.shape as number[]).at(-1) !== cols || (t.shape as number[]).reduce((a, b) => a * b, 1) === rows && cols !== 1;
    return { name: o, type: cudaType(t.dtype, where), perRow: perRow && mode === 'row' };
  });
  const results = bodyOutputs.map((o) => refs.get(o) ?? inputRef(o));
  const threads = mode === 'row' ? rowGeometry(cols).threads : 256;
  return { kind: 'elementwise', mode, rows, cols, compute, inputs, outputs, program, results, threads, ...(mode === 'row' ? { row: ROW_TUNING } : {}), ...(undeferrable.length ? { undeferrable } : {}) };
}

/** The descriptors of a segmented launch (dc.SegmentedKernel, passes/fuse-horizontal.ts): one per
 * row kernel of its body, in body order (each addressed like a launch of its own). The body's
 * kernels read and write its formal names; each is described over the node's actual values
 * (position for position), which a later pass may have renamed (eliminate-common, the Rewriter). */
export function segmentDescriptors(graph: Graph, node: Node, deferred?: ReadonlyMap<string, Deferred>): ElementwiseDescriptor[] {
  return segmentNodes(node).map((n) => elementwiseDescriptor(graph, n, deferred));
}

/** The body nodes of a one-launch group (a segmented kernel's row kernels: segmentDescriptors; a
 * dc.GroupedGemm's GEMMs: plan.ts) over the node's actual values. */
export function segmentNodes(node: Node): Node[] {
  const body = node.body;
  if (!body?.nodes.length) fail(`${node.op} kernel -> ${node.outputs[0]}`, 'a body of the launch\'s parts', 'none');
  const actual = new Map([...body.inputs.map((f, i) => [f, node.inputs[i]] as const), ...body.outputs.map((f, i) => [f, node.outputs[i]] as const)]);
  const outer = (x: string) => (x ? actual.get(x) ?? x : x);
  return body.nodes.map((n) => ({ ...n, inputs: n.inputs.map(outer), outputs: n.outputs.map(outer) }));
}

/** Whether a node is a segmented launch (passes/fuse-horizontal.ts). */
export const isSegmented = (node: Node) => node.domain === 'dc' && node.op === 'SegmentedKernel';

/** The same row kernel with another tuning (benchmarks compare them on the GPU). */
export function withRowTuning(d: ElementwiseDescriptor, row: RowTuning): ElementwiseDescriptor {
  return { ...d, row, threads: rowGeometry(d.cols, row.vectorsPerThread).threads };
}
