/**
 * The kernel plan: the optimised graph as a list of launches, each a typed descriptor (never a raw
 * graph node), with its arguments resolved to where the values live (arena offset, weight, graph
 * input/output), in schedule order.
 *
 *   kernel   a generated element-wise kernel (name, grid, block, shared memory)
 *   gemm     a GEMM for cuBLASLt: M, N, K, weight layout, precision and scale layout
 *            (fp8: per-token x per-channel scales, cuBLASLt's outer-vector mode, measured in
 *            bench/RESULTS.md), optional bias. `unscaled`: an fp8 GEMM whose readers apply its
 *            scales and bias as they load (dequant.ts); it runs with unit scales and no bias. `fastAccum`: an fp8 GEMM accumulating without
 *            cuBLASLt's periodic fp32 promotion (the policy's `accumulation`). `act` marks a dc.ActMatMul (lower-attention's GEMM
 *            attention): B is an activation too (layout from transB, 'nk' or 'kn'), precision
 *            'high' (operand types from the graph), alpha, and each operand's leading dimension in
 *            elements: A and B may be views whose rows are evenly strided (a Split part of the
 *            fused QKV projection), so long as the columns are contiguous
 *   kernel   also a segmented launch (dc.SegmentedKernel: independent row kernels as one launch,
 *            passes/fuse-horizontal.ts): each segment's arguments in turn
 *   kernel   also the data-movement kernels (Concat, Transpose, Gather, Slice; Expand as a
 *            broadcast element-wise copy)
 *   kernel   also the attention kernels: AttentionPack (the prologue writing packed Q/K/V) and
 *            PackedAttention (attention.ts); grid 1-D, dynamic shared memory above 48 KB (the
 *            runtime raises the kernel's limit to sharedBytes)
 *   kernel   also the VAE decoders' convolutions and norms over channels (conv-launch.ts)
 *   kernel   also the weight-only FP8 GEMV (dc.WQLinear, gemv.ts): args (x, wq, ws[, b], y)
 *   kernel   also twin FP8 GEMMs as one launch of the own kernel (dc.GroupedGemm, passes/fuse-horizontal.ts;
 *            gemm.ts twinM): the GEMM of more rows first, then its twin, each X, W, Y, Y, xs, ws[, b];
 *            where the own kernel does not run (another policy), each GEMM as its own launch
 *   pending  an op with no kernel yet: named so
 *            the gap is visible in the report, never silently dropped
 *
 * Views and load-time weight preparation are not launches (compiler/launches.ts).
 */
import { fail } from '../errors.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { bytesFor, type DType } from '../ir/dtype.ts';
import { isDense, resolveView } from './views.ts';
import { consumers } from '../ir/graph.ts';
import { isLaunch, loadTimeNodes } from '../launches.ts';
import type { MemoryPlan } from '../../passes/plan-memory.ts';
import { actMatMulDims } from '../ops/packed-attention.ts';
import { attentionDescriptor, keyMaskWindow, packDescriptor, renderAttention, renderPack, renderVQuant, vquantDescriptor } from './attention.ts';
import { vaeLaunch } from './conv-launch.ts';
import { EW_OPS, elementwiseDescriptor, isSegmented, segmentDescriptors, segmentNodes } from './elementwise.ts';
import { MOVEMENT_OPS, movementDescriptor, renderMovement } from './movement.ts';
import { isNvfp4ActivationQuantize, nvfp4QuantizeDescriptor, renderNvfp4Quantize } from './nvfp4.ts';
import { type RenderedKernel, launchValues, renderElementwise, renderSegmented } from './render.ts';
import { type Deferred, type ReaderKind, deferredGemms } from './dequant.ts';
import { gemvDescriptor, renderGemv } from './gemv.ts';
import { type AmaxMask, type AmaxWindow, type ResidualGate, type ScaledTypes, ownGemm, ownGemmTakes, renderAmaxZero } from './gemm.ts';
import { amaxWindow, gluWindow, isResidualQLinear, qlinearGemmN, residualGateLayout } from '../ops/quant.ts';

export interface LaunchArg { value: string; where: 'arena' | 'weight' | 'input'; offset?: number }

/**
 * A kernel parameter passed as a tensor map (CUtensorMap, 128 bytes by value) that the runtime
 * encodes at load over the address of argument `param`: a row-major matrix of `rows` x `cols`
 * elements (`dtype`), rows `rowBytes` apart, copied in boxes of `box` = [cols, rows] whose rows (32, 64
 * or 128 bytes) are the swizzle's span (the own FP8 GEMM's operands and output, 128-byte; its GLU
 * outputs' 32-column chunks, 64-byte: compiler/codegen/gemm.ts).
 */
export interface TensorMapArg { param: number; dtype: 'uint8' | 'bfloat16' | 'float32'; rows: number; cols: number; rowBytes: number; box: [number, number] }

export type Launch =
  | { kind: 'kernel'; node: string; kernel: string; grid: number; block: number; sharedBytes: number; args: LaunchArg[]; maps?: TensorMapArg[] }
  | { kind: 'gemm'; node: string; precision: 'fp8' | 'nvfp4' | 'high'; m: number; n: number; k: number; transB: boolean; bias: boolean; args: LaunchArg[]; act?: ActGemm; unscaled?: true; fastAccum?: true }
  | { kind: 'pending'; node: string; op: string; args: LaunchArg[] };

/** A GEMM of two activations (dc.ActMatMul): alpha, and the row strides (elements) of A [M, K] and B. */
export interface ActGemm { alpha: number; lda: number; ldb: number }

export interface KernelPlan {
  launches: Launch[];
  kernels: RenderedKernel[];
  /** Ops still without a kernel, and how many launches each. */
  pending: Record<string, number>;
}

const shapeOf = (graph: Graph, v: string) => (graph.types.get(v) as unknown as { shape: number[] }).shape;


/**
 * The row stride (elements) of a value read as a row-major matrix of `cols` columns: its window's
 * columns contiguous and every leading dim one even run of rows; undefined otherwise.
 */
export function matrixLd(dims: readonly { size: number; stride: number }[], cols: number): number | undefined {
  const d = dims.filter((x) => x.size !== 1);
  if (cols !== 1 && (d.at(-1)?.size !== cols || d.at(-1)!.stride !== 1)) return undefined;
  const lead = cols === 1 ? d : d.slice(0, -1);
  if (!lead.length) return cols;
  for (let i = 0; i < lead.length - 1; i++) if (lead[i].stride !== lead[i + 1].stride * lead[i + 1].size) return undefined;
  return lead.at(-1)!.stride >= cols ? lead.at(-1)!.stride : undefined;
}

/** Whether a launch node is an element-wise kernel (a FusedKernel or one element-wise op; not a
 * weight's Quantize, not NVFP4 quantization, which a producer cannot fuse: it needs two passes). */
function elementwiseRoute(node: Node): boolean {
  const weightQuantize = node.op === 'Quantize' && ![-1, undefined].includes(node.attrs.axis as number | undefined);
  const nvfp4 = [node, ...(node.body?.nodes ?? [])].some((n) => n.op === 'Quantize' && n.attrs.format === 'nvfp4');
  return !nvfp4 && (node.op === 'FusedKernel' || isSegmented(node) || (EW_OPS.has(node.op) && !weightQuantize));
}

/**
 * The FP8 GEMMs whose readers apply their scales (dequant.ts), decided on the optimised graph
 * before its memory plan (planMemory keeps each deferred GEMM's xs alive for its readers: lateReads).
 */
export function deferDequant(graph: Graph, ownScales?: { minTiles: number }): Map<string, Deferred> {
  const users = consumers(graph);
  const loadTime = loadTimeNodes(graph);
  const launches = graph.nodes.filter((node, i) => !loadTime.has(i) && isLaunch(graph, node, users));
  // As kernelPlan routes it (asked only of an FP8 GEMM's readers: vaeLaunch renders convolutions).
  const kindOf = (node: Node): ReaderKind => (isNvfp4ActivationQuantize(graph, node) || vaeLaunch(graph, node) ? 'other'
    : elementwiseRoute(node) ? 'elementwise' : node.domain === 'dc' && node.op === 'AttentionPack' ? 'pack' : 'other');
  const deferred = deferredGemms(graph, launches, kindOf, (node, kind, candidates) =>
    (kind === 'elementwise' ? (isSegmented(node) ? segmentDescriptors(graph, node, candidates).flatMap((d) => d.undeferrable ?? []) : elementwiseDescriptor(graph, node, candidates).undeferrable) : kind === 'pack' ? packDescriptor(graph, node, candidates).undeferrable : undefined) ?? []);
  // ownScales (policy gemm "own", gemmScales "auto"): the GEMMs the own kernel takes apply their scales
  // in its epilogue. Taken out after the choice, not from `launches`: they are readers too (of what
  // they read raw), and a reader's refusals are per input, so the other GEMMs' choice does not change.
  if (ownScales) for (const node of launches) if (ownTakes(graph, node, ownScales.minTiles)) deferred.delete(node.outputs[0]);
  return deferred;
}

/** A dc.Linear / dc.QLinear's GEMM dimensions: X [.., K] as M rows, Y [.., N] (a GLU QLinear's Y: N less its window's width). */
function gemmDims(graph: Graph, node: Node) {
  const x = shapeOf(graph, node.inputs[0]), y = shapeOf(graph, node.outputs[0]);
  return { m: x.slice(0, -1).reduce((a, b) => a * b, 1), k: x.at(-1)!, n: qlinearGemmN(node, y.at(-1)!) };
}

const dtypeOf = (graph: Graph, v: string) => (graph.types.get(v) as unknown as { dtype: DType }).dtype;

/** A QLinear's scale and bias element types, as the own kernel's scaled epilogue reads them. */
function scaledTypes(graph: Graph, node: Node): ScaledTypes {
  const [, xs, , ws, bias] = node.inputs;
  return { xs: dtypeOf(graph, xs), ws: dtypeOf(graph, ws), ...(bias ? { bias: dtypeOf(graph, bias) } : {}) };
}

/** Whether an FP8 QLinear is one the own kernel takes with its scales in the epilogue (compiler/codegen/gemm.ts ownGemmTakes). */
function ownTakes(graph: Graph, node: Node, minTiles: number): boolean {
  if (node.domain !== 'dc' || node.op !== 'QLinear' || node.attrs.format !== 'fp8') return false;
  const { m, n, k } = gemmDims(graph, node);
  return ownGemmTakes(m, n, k, dtypeOf(graph, node.outputs[0]), scaledTypes(graph, node), minTiles);
}

/** `deferred`: deferDequant's answer, the same the memory plan was made with (none: every GEMM applies its own scales). */
/**
 * Options the precision policy sets: `fastAccum`, FP8 GEMMs without periodic fp32 promotion
 * (passes/quantize/policy.ts `accumulation`); `ownGemm`, the FP8 GEMMs the own kernel takes run it
 * (policy `gemm: "own"`, h100 only; deferred ones unscaled, the others with their scales in its
 * epilogue), promoting every `promote` K blocks (0: fast), those of at least `minTiles` output tiles.
 */
export interface PlanOptions {
  fastAccum?: boolean; ownGemm?: { promote: number; minTiles: number };
  /** Segmented kernels (by name) launched as their segments instead: ones that spilled when built (compile.ts). */
  separate?: ReadonlySet<string>;
}

export function kernelPlan(graph: Graph, memory: MemoryPlan, deferred: ReadonlyMap<string, Deferred> = new Map(), options: PlanOptions = {}): KernelPlan {
  const users = consumers(graph);
  const loadTime = loadTimeNodes(graph);
  const kernels = new Map<string, RenderedKernel>();
  const launches: Launch[] = [];
  const pending: Record<string, number> = {};
  const bufferOf = new Map(memory.buffers.map((b) => [b.value, b]));
  const arg = (v: string): LaunchArg => {
    if (graph.inputs.includes(v)) return { value: v, where: 'input' };
    const base = memory.location.get(v);
    if (base === undefined) return { value: v, where: 'weight' };
    const buffer = bufferOf.get(base);
    // A view (Split part, Slice) starts where its window does inside the root buffer.
    const view = base === v ? 0 : resolveView(graph, v, `launch argument '${v}'`).offset;
    return { value: v, where: 'arena', offset: buffer!.offset + bytesFor(dtypeOf(graph, v), view) };
  };
  const args = (n: Node) => [...n.inputs, ...n.outputs].filter(Boolean).map(arg);
  // Element-wise, attention and data-movement kernels read strided views; the others (GEMMs,
  // convolutions, NVFP4 quantization) read dense arrays: a view with gaps is an error naming it.
  // A value that is a window (Split part, Slice) of an arena buffer, else undefined.
  const windowOf = (v: string) => (!v || memory.location.get(v) === v || memory.location.get(v) === undefined ? undefined : resolveView(graph, v, `launch argument '${v}'`));
  const dense = (n: Node, values: readonly string[]) => {
    for (const v of values) {
      if (!v || memory.location.get(v) === v || memory.location.get(v) === undefined) continue;
      const view = resolveView(graph, v, `${n.op} launch -> ${n.outputs[0]}`);
      if (!isDense(view.dims)) fail(`${n.op} launch -> ${n.outputs[0]}`, 'dense inputs (only element-wise, attention and data-movement kernels read strided views)', `'${v}' with strides [${view.dims.map((d) => d.stride)}]`);
    }
  };
  // A residual QLinear's gate (fuse-gemm-residual): its batches and rows a batch, and where its batch rows sit
  // (a window of the modulation's output, or a dense array): N contiguous values a row.
  const gateOf = (q: Node): ResidualGate => {
    const y = shapeOf(graph, q.outputs[0]), n = y.at(-1)!, dims = windowOf(q.inputs[5])?.dims;
    const g = residualGateLayout(shapeOf(graph, q.inputs[5]), y) ?? fail(`QLinear launch -> ${q.outputs[0]}`, `a residual gate of [B or 1, 1.., ${n}] against [${y}]`, `[${shapeOf(graph, q.inputs[5])}]`);
    if (dims && dims.at(-1)!.stride !== 1) fail(`QLinear launch -> ${q.outputs[0]}`, 'a gate of contiguous rows', `'${q.inputs[5]}' with strides [${dims.map((d) => d.stride)}]`);
    return { ...g, batchStride: g.batches === 1 ? 0 : dims ? dims[0].stride : n };
  };
  // A QLinear's amax window (fuse-vquant) as the own GEMM's epilogue takes it, or one that takes none.
  const amaxOf = (q: Node): AmaxWindow => {
    const a = amaxWindow(q), rows = shapeOf(graph, q.outputs[0])[1];
    return a ? { lo: a.start, hi: a.start + a.count, rows, keys: a.maskKeys, offset: a.maskOffset } : { lo: 0, hi: 0, rows: 16, keys: 0, offset: 0 };
  };
  // The launch's key mask (the GEMMs' with masked keys share the attention's): its root and window over (b, k).
  const masked = (g: Node) => (amaxWindow(g)?.maskKeys ?? 0) > 0;
  const amaxMaskOf = (gemms: Node[]): { value: string; mask: AmaxMask } | undefined => {
    const q = gemms.find(masked);
    if (!q) return undefined;
    const w = keyMaskWindow(graph, q.inputs[7], amaxWindow(q)!.seqKv, `QLinear launch -> ${q.outputs[0]}`);
    if (gemms.some((g) => masked(g) && g.inputs[7] !== q.inputs[7])) fail(`GroupedGemm launch -> ${q.outputs[0]}`, 'one key mask for the launch', gemms.map((g) => g.inputs[7]).join(', '));
    return { value: w.value, mask: { type: w.type, bool: w.bool, offset: w.offset, b: w.strides[0], t: w.strides[3] } };
  };
  // Zeroes the amax outputs of these GEMMs before their launch (their epilogue takes maxima into them).
  const zeroAmax = (name: string, gemms: Node[]) => {
    const outs = gemms.filter((g) => amaxWindow(g)).map((g) => g.outputs[1]);
    if (!outs.length) return;
    const k = renderAmaxZero(outs.map((v) => shapeOf(graph, v).reduce((a, b) => a * b, 1)));
    kernels.set(k.name, k);
    launches.push({ kind: 'kernel', node: name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, args: outs.map(arg) });
  };
  const place = (node: Node) => {
    const name = node.outputs[0];
    if (isNvfp4ActivationQuantize(graph, node)) {
      dense(node, [node.inputs[0]]);
      // Two launches (tensor amax, then encode), both over (x, q, scale): compiler/codegen/nvfp4.ts.
      for (const k of renderNvfp4Quantize(nvfp4QuantizeDescriptor(graph, node))) {
        kernels.set(k.name, k);
        launches.push({ kind: 'kernel', node: name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, args: [node.inputs[0], ...node.outputs].map(arg) });
      }
      return;
    }
    const vae = vaeLaunch(graph, node); // convolutions and channel norms (conv-launch.ts)
    if (vae) { dense(node, vae.args); kernels.set(vae.kernel.name, vae.kernel); launches.push({ kind: 'kernel', node: name, kernel: vae.kernel.name, grid: vae.kernel.grid, block: vae.kernel.block, sharedBytes: vae.kernel.sharedBytes, args: vae.args.map(arg) }); return; }
    if (isSegmented(node)) {
      // Row kernels in one launch, each segment's arguments as its own launch would pass them; or,
      // where renderSegmented declines or the kernel is to be separate, one launch each.
      const ds = segmentDescriptors(graph, node, deferred);
      const rendered = renderSegmented(ds, `${node.op} launch -> ${name}`);
      const merged = rendered && !options.separate?.has(rendered.name) ? rendered : undefined;
      for (const [k, list] of merged ? [[merged, ds]] as const : ds.map((d) => [renderElementwise(d), [d]] as const)) {
        kernels.set(k.name, k);
        launches.push({ kind: 'kernel', node: name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, args: list.flatMap(launchValues).map(arg) });
      }
      return;
    }
    if (elementwiseRoute(node)) {
      const d = elementwiseDescriptor(graph, node, deferred);
      const k = renderElementwise(d);
      kernels.set(k.name, k);
      // Arguments in the kernel's parameter order: its inputs (first use, deduplicated), their dequantization values, then outputs.
      launches.push({ kind: 'kernel', node: name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, args: launchValues(d).map(arg) });
      return;
    }
    if (node.domain === 'dc' && node.op === 'WQLinear') {
      dense(node, node.inputs);
      const k = renderGemv(gemvDescriptor(graph, node));
      kernels.set(k.name, k);
      launches.push({ kind: 'kernel', node: name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, args: args(node) });
      return;
    }
    if (node.domain === 'dc' && node.op === 'GroupedGemm') {
      const [a, b] = segmentNodes(node).sort((x, y) => gemmDims(graph, y).m - gemmDims(graph, x).m);
      const [da, db] = [gemmDims(graph, a), gemmDims(graph, b)];
      if (da.n !== db.n || da.k !== db.k) fail(`GroupedGemm launch -> ${name}`, 'GEMMs of one N and K', `${da.n}x${da.k} and ${db.n}x${db.k}`);
      // One kernel's parameters for both: the same scale and bias types (and a bias in both or neither), the same Y type.
      const types = (g: Node) => JSON.stringify([scaledTypes(graph, g), dtypeOf(graph, g.outputs[0])]);
      if (types(a) !== types(b)) fail(`GroupedGemm launch -> ${name}`, 'GEMMs of one scale, bias and output type', `${types(a)} and ${types(b)}`);
      // Dense operands; a residual epilogue's gate is read by rows (gateOf), an amax epilogue's key mask through its window.
      dense(node, node.inputs.filter((v) => ![a, b].some((g) => (isResidualQLinear(g) && g.inputs[5] === v) || g.inputs[7] === v)));
      if (isResidualQLinear(a) !== isResidualQLinear(b)) fail(`GroupedGemm launch -> ${name}`, 'GEMMs of one epilogue', 'a residual QLinear beside a plain one');
      const residual = isResidualQLinear(a) ? [gateOf(a), gateOf(b)] : undefined;
      const withAmax = [a, b].some((g) => amaxWindow(g)), mask = amaxMaskOf([a, b]);
      const amax = withAmax ? { gemms: [amaxOf(a), amaxOf(b)], ...(mask ? { mask: mask.mask } : {}) } : undefined;
      const own = options.ownGemm ? ownGemm(da.m, da.n, da.k, options.ownGemm.promote, dtypeOf(graph, a.outputs[0]), scaledTypes(graph, a), options.ownGemm.minTiles, db.m, residual, amax) : undefined;
      if (!own) { [a, b].forEach(place); return; }
      kernels.set(own.kernel.name, own.kernel);
      zeroAmax(name, [a, b]);
      // Per GEMM: X, W, Y (maps), Y's pointer, xs, ws[, bias][, gate, R (a map)][, amax[, mask]] (a GEMM without amax passes the other's, unused).
      const amaxOut = (g: Node) => (amaxWindow(g) ? g : [a, b].find((o) => amaxWindow(o))!).outputs[1];
      const values = (g: Node) => { const [x, xs, w, ws, bias, gate, r] = g.inputs; return [x, w, g.outputs[0], g.outputs[0], xs, ws, ...(bias ? [bias] : []), ...(residual ? [gate, r] : []), ...(amax ? [amaxOut(g), ...(mask ? [mask.value] : [])] : [])]; };
      launches.push({ kind: 'kernel', node: name, kernel: own.kernel.name, grid: own.kernel.grid, block: own.kernel.block, sharedBytes: own.kernel.sharedBytes, args: [...values(a), ...values(b)].map(arg), maps: own.maps });
      return;
    }
    if (node.domain === 'dc' && (node.op === 'Linear' || node.op === 'QLinear')) {
      const { m, n, k } = gemmDims(graph, node);
      const precision = node.op === 'QLinear' ? (node.attrs.format as 'fp8' | 'nvfp4') : 'high';
      const bias = node.op === 'QLinear' ? !!node.inputs[4] : !!node.inputs[2];
      // Dense operands; a residual epilogue's gate is read by rows (gateOf), an amax epilogue's key mask through its window.
      dense(node, node.inputs.filter((_, i) => !(i === 5 && isResidualQLinear(node)) && i !== 7));
      // The own kernel: a deferred GEMM as it stands (unscaled), any other with its scales and bias in the epilogue.
      const scaled = !deferred.has(name), residual = isResidualQLinear(node) ? [gateOf(node)] : undefined;
      const mask = amaxMaskOf([node]), amax = amaxWindow(node) ? { gemms: [amaxOf(node)], ...(mask ? { mask: mask.mask } : {}) } : undefined;
      const glu = gluWindow(node);
      const own = options.ownGemm && precision === 'fp8' ? ownGemm(m, n, k, options.ownGemm.promote, dtypeOf(graph, name), scaled ? scaledTypes(graph, node) : undefined, options.ownGemm.minTiles, undefined, residual, amax, glu) : undefined;
      // fuse-gemm-residual, fuse-gemm-glu and fuse-vquant fuse only where the own kernel runs the GEMM (the first unfuses the rest).
      if ((residual || amax || glu) && !own) fail(`QLinear launch -> ${name}`, `the own FP8 GEMM for ${residual ? 'a residual epilogue (fuse-gemm-residual)' : glu ? 'a GLU epilogue (fuse-gemm-glu)' : 'an amax epilogue (fuse-vquant)'}`, `a GEMM it does not take (${m}x${n}x${k}${scaled ? '' : ', deferred'})`);
      if (own) {
        // X [M, K] codes, W [N, K] codes, Y [M, N] (dense: dense() above) as tensor maps, then Y's pointer, then (scaled) xs, ws and the bias, then (residual) the gate and R (a map), then (amax) its output and the key mask, then (glu) Y for its 32-column map.
        const [x, xs, w, ws, b, gate, r] = node.inputs;
        kernels.set(own.kernel.name, own.kernel);
        zeroAmax(name, [node]);
        const values = [x, w, name, name, ...(scaled ? [xs, ws, ...(bias ? [b] : [])] : []), ...(residual ? [gate, r] : []), ...(amax ? [node.outputs[1], ...(mask ? [mask.value] : [])] : []), ...(glu ? [name] : [])];
        launches.push({ kind: 'kernel', node: name, kernel: own.kernel.name, grid: own.kernel.grid, block: own.kernel.block, sharedBytes: own.kernel.sharedBytes, args: values.map(arg), maps: own.maps });
        return;
      }
      // cuBLASLt: a deferred GEMM's readers apply its scales and bias; a quantized weight is stored
      // [N, K] whatever the graph's transB (weights-file.ts).
      launches.push({ kind: 'gemm', node: name, precision, m, n, k, transB: node.attrs.transB === 1, bias, args: args(node), ...(deferred.has(name) ? { unscaled: true as const } : {}), ...(precision === 'fp8' && options.fastAccum ? { fastAccum: true as const } : {}) });
      return;
    }
    if (node.domain === 'dc' && node.op === 'ActMatMul') {
      const [a, b] = node.inputs;
      const { m, n, k } = actMatMulDims(node, shapeOf(graph, a), shapeOf(graph, b), `ActMatMul launch -> ${name}`);
      const transB = node.attrs.transB === 1;
      const ld = (v: string, cols: number) => {
        const view = resolveView(graph, v, `ActMatMul launch -> ${name}`);
        return matrixLd(view.dims, cols) ?? fail(`ActMatMul launch -> ${name}`, `'${v}' as rows of ${cols} contiguous values, evenly strided`, `strides [${view.dims.map((x) => x.stride)}] over [${view.dims.map((x) => x.size)}]`);
      };
      dense(node, [name]);
      const act: ActGemm = { alpha: (node.attrs.alpha as number | undefined) ?? 1, lda: ld(a, k), ldb: ld(b, transB ? k : n) };
      launches.push({ kind: 'gemm', node: name, precision: 'high', m, n, k, transB, bias: false, args: args(node), act });
      return;
    }
    if (node.domain === '' && (MOVEMENT_OPS.has(node.op) || node.op === 'Expand')) {
      // Expand is a broadcast copy: an element-wise Identity over its (broadcast) input.
      const k = node.op === 'Expand'
        ? renderElementwise(elementwiseDescriptor(graph, { ...node, op: 'Identity', inputs: [node.inputs[0]] }))
        : renderMovement(movementDescriptor(graph, node, (v) => windowOf(v)?.dims.map((d) => d.stride)), 'movement');
      kernels.set(k.name, k);
      const read = node.op === 'Expand' || node.op === 'Slice' ? [node.inputs[0]] : node.inputs.filter(Boolean);
      launches.push({ kind: 'kernel', node: name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, args: [...read, ...node.outputs].map(arg) });
      return;
    }
    if (node.domain === 'dc' && (node.op === 'AttentionPack' || node.op === 'PackedAttention' || node.op === 'AttentionQuantizeV')) {
      const { args: values, ...k } = node.op === 'AttentionPack' ? renderPack(packDescriptor(graph, node, deferred))
        : node.op === 'AttentionQuantizeV' ? renderVQuant(vquantDescriptor(graph, node)) : renderAttention(attentionDescriptor(graph, node));
      kernels.set(k.name, k);
      launches.push({ kind: 'kernel', node: name, kernel: k.name, grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, args: values.map(arg) });
      return;
    }
    const op = `${node.domain ? `${node.domain}.` : ''}${node.op}`;
    pending[op] = (pending[op] ?? 0) + 1;
    launches.push({ kind: 'pending', node: name, op, args: args(node) });
  };
  graph.nodes.forEach((node, i) => {
    if (!loadTime.has(i) && isLaunch(graph, node, users)) place(node);
  });
  return { launches, kernels: [...kernels.values()], pending };
}
