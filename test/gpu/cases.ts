/**
 * GPU element-wise kernel tests, driven from the CPU machine (the GPU host has no Node):
 *
 *   npx tsx test/gpu/cases.ts prepare .gpu/cases     renders and builds (sm_90a) every element-wise
 *                                                    kernel of the tiny fixtures (correctness cases)
 *                                                    and of flux2_dev at 1024x1024 (timing cases;
 *                                                    its row kernels also as the compiled model
 *                                                    runs them, reading deferred GEMM outputs),
 *                                                    the VAE decoders' (tiny: checked; 1024x1024:
 *                                                    timed, convs and norms checked on samples),
 *                                                    writes kernels.cubin, cases.txt, expected.json
 *   npx tsx test/gpu/cases.ts prepare DIR vae        the VAE decoders' cases only
 *   npx tsx test/gpu/cases.ts prepare DIR rows       all but the VAE decoders' (the row-kernel work)
 *   npx tsx test/gpu/cases.ts prepare DIR row-kernels  the row kernels of `rows` only
 *   (GPU) nvcc -O2 -o h test/gpu/harness.cu -lcuda && ./h .gpu/cases $OUT > $OUT/log.txt
 *   npx tsx test/gpu/cases.ts check .gpu/cases RESULTS_DIR
 * (outputs.bin is ~25 MB with flux2_dev's checked row kernels: where files come back at most
 * 16 MiB each, `split -b 15M` it on the GPU host and concatenate the parts into RESULTS_DIR.)
 *
 * Inputs come from one deterministic generator implemented twice (dc_hash in harness.cu and here),
 * so nothing large travels; outputs are poisoned (0xFF) before the launch. Expected outputs are the
 * reference executor's, on the same inputs. Bars (issue 5): bf16/float outputs within 1e-2
 * relative L2; fp8 outputs within one e4m3 code of the simulation; convolutions of fp32 graphs
 * (bf16 tensor cores) within 1e-2.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKernels } from '../../compiler/build/index.ts';
import type { CudaType } from '../../compiler/codegen/elementwise.ts';
import { deferDequant, kernelPlan } from '../../compiler/codegen/plan.ts';
import { OWN_GEMM_MIN_TILES } from '../../compiler/codegen/gemm.ts';
import { horizontalFor } from '../../compiler/compile.ts';
import { lateReads } from '../../compiler/codegen/dequant.ts';
import { ROW_TUNING, type RowTuning, elementwiseDescriptor, isSegmented, segmentDescriptors, segmentNodes, withRowTuning } from '../../compiler/codegen/elementwise.ts';
import { type RenderedKernel, isSegmentedKernel, launchValues, renderElementwise, renderSegmented, renderUnit } from '../../compiler/codegen/render.ts';
import { loadConstant } from '../../compiler/onnx/constants.ts';
import { planMemory } from '../../passes/plan-memory.ts';
import { fuseElementwise, makeFuseElementwise } from '../../passes/fuse-elementwise.ts';
import { resolveView } from '../../compiler/codegen/views.ts';
import { ROOT } from '../../compiler/paths.ts';
import { fullModelPath } from '../../compiler/full-models.ts';
import { loadTimeNodes } from '../../compiler/launches.ts';
import { type DType, roundToBf16, roundToF16 } from '../../compiler/ir/dtype.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { specialise } from '../../compiler/ir/specialise.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { lookupOp } from '../../compiler/ops/registry.ts';
import { decodeE4M3, encodeE2M1, encodeE4M3, roundE4M3 } from '../../compiler/quant/formats.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { type PrecisionPolicy, defaultPolicy } from '../../passes/quantize/policy.ts';
import { NORM_LIMIT, VAE_TINY, convSamples, sampleCount, sampleStride, vaeFull } from './vae-cases.ts';

const KIND: Record<CudaType, number> = { float: 0, double: 1, bf16: 2, half: 3, fp8e4m3: 4, int64: 5, int32: 6, bool: 7, uint8: 8 };
const WIDTH: Record<CudaType, number> = { float: 4, double: 8, bf16: 2, half: 2, fp8e4m3: 1, int64: 8, int32: 4, bool: 1, uint8: 1 };

export function dcHash(i: number, seed: number): number {
  let h = (Math.imul(i, 0x9e3779b1) + seed) >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0; h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0; h ^= h >>> 16;
  return h >>> 0;
}
const uniform = (i: number, seed: number) => Math.fround((dcHash(i, seed) >>> 8) * (2 / 16777216) - 1);

function generate(dtype: DType, shape: readonly number[], seed: number, mod = 4): Tensor {
  const t = Tensor.zeros(dtype, shape);
  for (let i = 0; i < t.size; i++) {
    const u = uniform(i, seed);
    switch (dtype) {
      case 'bfloat16': t.set(i, roundToBf16(u)); break;
      case 'float16': t.set(i, roundToF16(u)); break;
      case 'float8e4m3fn': t.set(i, roundE4M3(u)); break;
      case 'int64': case 'int32': t.set(i, dcHash(i, seed) % mod); break;
      case 'bool': t.set(i, dcHash(i, seed) & 1); break;
      default: t.set(i, u);
    }
  }
  return t;
}

/** `concat: false`: Concats left to the data-movement kernels (the launches a fused Concat replaces). `h100`: the
 * compiled h100 model's pipeline (compile.ts horizontalFor: the own GEMM's twins and epilogue fusions, whose row
 * kernels read what those leave). */
function optimise(file: string, shapes: Record<string, number> = {}, format: 'fp8' | 'nvfp4' = 'fp8', concat = true, policy: Partial<PrecisionPolicy> = {}, h100 = false): Graph {
  const { graph } = importOnnx(file);
  const full = { ...defaultPolicy(format), ...policy };
  const passes = pipelineFor(h100 ? insertQuantize(full, 'h100') : insertQuantize(full), h100 ? horizontalFor(full, 'h100') : {}).map((p) => (p === fuseElementwise && !concat ? makeFuseElementwise({ concat: false }) : p));
  return runPipeline(inferTypes(specialise(graph, shapes)), { passes }).graph;
}

const CUDA: Partial<Record<DType, CudaType>> = { float32: 'float', float64: 'double', bfloat16: 'bf16', float16: 'half', float8e4m3fn: 'fp8e4m3', int64: 'int64', int32: 'int32', bool: 'bool', uint8: 'uint8' };

/** Output kinds beyond the element types: NVFP4 activation quantization's packed codes and scale buffer. */
type OutputType = CudaType | 'nvfp4q' | 'nvfp4s';
/** tolerance: the relative-L2 bar when not the dtype's (fp32 convolutions run bf16 tensor cores);
 * flops: for a TFLOP/s column in the timings. */
interface Case {
  kernel: string; node: string; ops: string; check: boolean; outputs: { type: OutputType; size: number; bytes?: number }[]; expected?: number[][]; tolerance?: number; flops?: number; bytes?: number;
  /** Checked against another case's outputs in the same run, bit for bit (index into the cases):
   * a deferred GEMM's reader in another tuning must give the same values. */
  sameAs?: number;
  /** Outputs saved for another case's sameAs, not checked themselves. */
  saveOnly?: boolean;
}

/** Row-kernel tunings timed beside the default (the rule's CTAs per SM): CTAs per SM fixed at 1-4,
 * a 3-stage ring (two rows in flight ahead) at 1-3, and 2 or 6 vectors a thread (the rule's CTAs). */
const ROW_TUNINGS: RowTuning[] = [
  ...[1, 2, 3, 4].map((ctasPerSm) => ({ ...ROW_TUNING, ctasPerSm })),
  ...[1, 2, 3].map((ctasPerSm) => ({ ...ROW_TUNING, stages: 3, ctasPerSm })),
  ...[2, 6].map((vectorsPerThread) => ({ ...ROW_TUNING, vectorsPerThread })),
];
/** Tunings the checked row kernels also run in (on 2 CTAs): against the reference, or a deferred
 * GEMM's reader bit for bit against its default tuning's outputs. Empty: none under study. */
const CHECKED_TUNINGS: RowTuning[] = [];
const tuningLabel = (t: RowTuning) => `${t.vectorsPerThread} vec/thread, ring ${t.stages}, ${t.ctasPerSm || 'rule'} CTA/SM`;

/**
 * The amax and encode launches of one NVFP4 Quantize as one case: the amax kernel writes partial
 * maxima into the scale buffer's tail and the encode kernel reads them, so they run as a chain on
 * the same buffers (one harness line). Checked: the packed codes exactly, and the block scales
 * (e4m3 codes times the global scale the kernel wrote) against the simulation's effective scales.
 */
function nvfp4Case(graph: Graph, launch: { kernel: string; node: string }, byName: Map<string, RenderedKernel>, kernels: Map<string, RenderedKernel>, cases: Case[], lines: string[]): void {
  const k = byName.get(launch.kernel)!;
  kernels.set(k.name, k);
  const node = graph.nodes.find((n) => n.outputs[0] === launch.node)!;
  const x = graph.types.get(node.inputs[0]) as unknown as { dtype: DType; shape: number[] };
  const n = x.shape.reduce((a, b) => a * b, 1);
  const seed = 7000 + cases.length;
  const xArg = `in ${WIDTH[CUDA[x.dtype]!]} ${n} ${seed} ${KIND[CUDA[x.dtype]!]} 4`;
  const qArg = `out 1 ${n / 2} 0 8 1`, sArg = `out 4 ${n / 16} 0 8 1`;
  if (launch.kernel.endsWith('_amax')) return; // launched in the chain below, before its encode kernel
  const amax = byName.get(launch.kernel.replace(/_encode$/, '_amax'))!;
  kernels.set(amax.name, amax);
  lines.push(`${amax.name}:${amax.grid}+${k.name}:${k.grid} ${k.grid} ${k.block} ${k.sharedBytes} 0 1 3 ${xArg} ${qArg} ${sArg}`);
  const X = generate(x.dtype, x.shape, seed);
  const [q, scale] = lookupOp(node)!.exec([X], node) as Tensor[];
  const codes = q.toNumbers(), scales = scale.toNumbers();
  const packed = Array.from({ length: n / 2 }, (_, i) => encodeE2M1(codes[2 * i]) | (encodeE2M1(codes[2 * i + 1]) << 4));
  cases.push({
    kernel: k.name, node: node.outputs[0], ops: 'Quantize (nvfp4)', check: true,
    outputs: [{ type: 'nvfp4q', size: n / 2, bytes: n / 2 }, { type: 'nvfp4s', size: n / 16, bytes: n / 4 }],
    expected: [packed, scales],
  });
}

/**
 * The window a kernel reads from a pointer to the value's first element: a view of a larger root
 * (a Split part, a Slice) is read with the root's strides, so the harness allocates and fills the
 * window's whole extent (generated by flat index, as the root's elements would be).
 */
function windowOf(graph: Graph, v: string): { extent: number; dims?: { size: number; stride: number }[] } {
  const shape = (graph.types.get(v) as unknown as { shape: number[] }).shape;
  const size = shape.reduce((x, y) => x * y, 1);
  let dims: { size: number; stride: number }[];
  try { dims = resolveView(graph, v, 'gpu case').dims; } catch { return { extent: size }; }
  if (size === 0) return { extent: 0 };
  const extent = 1 + dims.reduce((acc, d) => acc + (d.size - 1) * d.stride, 0);
  const dense = dims.every((d, i) => d.size === 1 || d.stride === dims.slice(i + 1).reduce((x, y) => x * y.size, 1));
  return dense && extent === size ? { extent } : { extent, dims };
}

/** The value as the kernel sees it, from the generated window (`gen(extent)`): gathered through
 * its strides where it is a view with gaps, else the window itself. */
function windowed(graph: Graph, v: string, gen: (n: number) => Tensor): Tensor {
  const t = graph.types.get(v) as unknown as { dtype: DType; shape: number[] };
  const { extent, dims } = windowOf(graph, v);
  const window = gen(extent);
  if (!dims) return window.reshape(t.shape);
  const flat = window.toNumbers();
  const out = Tensor.zeros(t.dtype, t.shape);
  for (let i = 0; i < out.size; i++) {
    let rest = i, off = 0;
    for (let d = dims.length - 1; d >= 0; d--) { off += (rest % dims[d].size) * dims[d].stride; rest = Math.floor(rest / dims[d].size); }
    out.set(i, flat[off]);
  }
  return out;
}

/** Row kernels: rendered from the row template (a ring or a register prefetch of the next row). */
const isRowKernel = (k: RenderedKernel) => k.source.includes('unsigned it = 0;');
const rowKernelNames = new Set<string>();
const isRowCase = (c: { kernel: string; ops: string }) => rowKernelNames.has(c.kernel) || /CTA\/SM/.test(c.ops);

async function prepare(dir: string, only?: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  // `only` = 'vae': just the VAE decoders' cases; 'rows': all but the VAE decoders'; 'row-kernels':
  // the row kernels of 'rows' only (about 6 s on the H100).
  const all = only !== 'vae';
  const rowsOnly = only === 'row-kernels';
  // (Attention kernels, packs included, have their own harness: test/gpu/attention.ts.)
  const notAttention = (k: string) => !k.startsWith('attn');
  const models: { graph: Graph; check: boolean; only?: (launchKernel: string) => boolean; sample?: boolean; label?: string; deferred?: boolean }[] = !all ? [] : ['flux2', 'qwen_image', 'mistral_text_encoder', 'qwen_text_encoder'].map((m) => ({ graph: optimise(join(ROOT, 'models', 'tiny', m, 'model.onnx')), check: true, only: notAttention }));
  // NVFP4 activation quantization (the b200 path), built for sm_90a and checked on the H100: the
  // template is portable CUDA, so the same descriptors pass the same reference test here.
  if (all) models.push({ graph: optimise(join(ROOT, 'models', 'tiny', 'flux2', 'model.onnx'), {}, 'nvfp4'), check: true, only: (k) => k.startsWith('q4_') });
  // The weight-only FP8 GEMV (compiler/codegen/gemv.ts) on every one-row GEMM of the tiny models
  // (oneRowMinBytes 0; by default only large weights take it). Its full-size shapes: bench/gpu/gemv_fp8.py.
  if (all) for (const m of ['flux2', 'qwen_image']) models.push({ graph: optimise(join(ROOT, 'models', 'tiny', m, 'model.onnx'), {}, 'fp8', true, { oneRowMinBytes: 0 }), check: true, only: (k) => k.startsWith('gemv8_') });
  const full = fullModelPath('flux2_dev');
  if (all) {
    // flux2_dev's row kernels at 64 + 64 tokens (bf16, the full widths) checked; at 1024x1024 timed.
    models.push({ graph: optimise(full, { img_tokens: 64, txt_tokens: 64 }), check: true, only: (k) => rowKernelNames.has(k) });
    // The same with deferred dequantization (the compiled models' kernels): each reader of a
    // deferred GEMM saved, and again in each CHECKED_TUNINGS tuning, whose outputs must be the same bits.
    if (CHECKED_TUNINGS.length) models.push({ graph: optimise(full, { img_tokens: 32, txt_tokens: 32 }), check: true, deferred: true, only: (k) => rowKernelNames.has(k), label: ' (deferred)' });
    models.push({ graph: optimise(full, { img_tokens: 4096, txt_tokens: 512 }), check: false, only: (k) => notAttention(k) && !k.startsWith('dca_') });
    // The launches a fused Concat replaces (SwiGLU, Concat, Quantize of the single blocks), timed
    // beside the fused kernel: the unfused graph's kernels that the fused graph does not have.
    models.push({ graph: optimise(full, { img_tokens: 4096, txt_tokens: 512 }, 'fp8', false), check: false, only: (k) => notAttention(k) && !k.startsWith('dca_'), label: ' (unfused)' });
    // The kernels as the compiled model runs them: its pipeline (the own GEMM's epilogue fusions: the residual add, the
    // SwiGLU), readers of deferred GEMMs (dequant.ts) where cuBLASLt runs the GEMM, the own GEMM's scaled outputs elsewhere.
    models.push({ graph: optimise(full, { img_tokens: 4096, txt_tokens: 512 }, 'fp8', true, {}, true), check: false, deferred: true, only: (k) => notAttention(k) && !k.startsWith('dca_') && !k.startsWith('gemm8_') && (!rowsOnly || rowKernelNames.has(k)), label: ' (deferred)' });
  }
  // VAE decoders: the tiny ones checked whole; the full-size ones (1024x1024) timed, and their
  // convolution and norm kernels checked on sampled outputs (vae-cases.ts).
  if (only !== 'rows' && !rowsOnly) for (const m of VAE_TINY) models.push({ graph: optimise(join(ROOT, 'models', 'tiny', m, 'model.onnx')), check: true, only: notAttention });
  if (only !== 'rows' && !rowsOnly) for (const f of vaeFull()) models.push({ graph: optimise(f), check: false, sample: true, only: notAttention });
  const kernels = new Map<string, RenderedKernel>();
  const cases: Case[] = [];
  const lines: string[] = [];
  for (const { graph, check: checkModel, only, sample, label = '', deferred: defer } of models) {
    // Deferred as the compiled h100 model defers (the own GEMM applies the scales of those it runs).
    const deferred = defer ? deferDequant(graph, { minTiles: OWN_GEMM_MIN_TILES }) : new Map();
    const plan = kernelPlan(graph, planMemory(graph, lateReads(graph, deferred)), deferred, defer ? { fastAccum: true, ownGemm: { promote: 0, minTiles: OWN_GEMM_MIN_TILES } } : {});
    const byName = new Map(plan.kernels.map((k) => [k.name, k]));
    for (const k of plan.kernels) if (isRowKernel(k)) rowKernelNames.add(k.name);
    for (const launch of plan.launches) {
      if (launch.kind !== 'kernel' || kernels.has(launch.kernel) || (only && !only(launch.kernel))) continue;
      if (launch.kernel.startsWith('q4_')) {
        if (rowsOnly) continue;
        nvfp4Case(graph, launch, byName, kernels, cases, lines);
        continue;
      }
      const k = byName.get(launch.kernel)!;
      if (rowsOnly && !isRowKernel(k)) continue;
      kernels.set(k.name, k);
      const node = graph.nodes.find((n) => n.outputs[0] === launch.node)!;
      const outputs = new Set(node.outputs);
      // Sampled checks of the full-size VAE kernels: every `stride`-th output element.
      const conv = node.op === 'FusedConv', outSize = (graph.types.get(node.outputs[0]) as unknown as { shape: number[] }).shape.reduce((x, y) => x * y, 1);
      const sampled = !!sample && (conv || (node.attrs.kernel !== undefined && outSize <= NORM_LIMIT));
      const stride = sampled ? sampleStride(outSize) : 1;
      const check = checkModel || sampled;
      const typeOf = (v: string) => graph.types.get(v) as unknown as { dtype: DType; shape: number[] };
      const seedBase = cases.length * 16;
      const inArgs = launch.args.filter((a) => !outputs.has(a.value)), outArgs = launch.args.filter((a) => outputs.has(a.value));
      // Integer inputs are drawn below a modulus: Gather indices must stay inside the gathered axis.
      const mod = (a: { value: string }) => (node.op === 'Gather' && a.value === node.inputs[1]
        ? typeOf(node.inputs[0]).shape[((node.attrs.axis as number | undefined) ?? 0) < 0 ? ((node.attrs.axis as number) + typeOf(node.inputs[0]).shape.length) : ((node.attrs.axis as number | undefined) ?? 0)] : 4);
      const inArg = (v: string, seed: number) => { const t = typeOf(v); return `in ${WIDTH[CUDA[t.dtype]!]} ${windowOf(graph, v).extent} ${seed} ${KIND[CUDA[t.dtype]!]} ${mod({ value: v })}`; };
      const outArg = (v: string) => { const t = typeOf(v); return `out ${WIDTH[CUDA[t.dtype]!]} ${t.shape.reduce((x, y) => x * y, 1)} 0 ${KIND[CUDA[t.dtype]!]} 1`; };
      // One seed a value (a segmented kernel's segments may read the same one): the reference reads one tensor.
      const seedOf = new Map<string, number>();
      inArgs.forEach((a, j) => seedOf.has(a.value) || seedOf.set(a.value, seedBase + j));
      // In the launch's order (a segmented kernel's are each segment's inputs then outputs in turn).
      const args = launch.args.map((a) => (outputs.has(a.value) ? outArg(a.value) : inArg(a.value, seedOf.get(a.value)!)));
      // A segmented kernel launched as one (not one launch a segment: renderSegmented declined).
      const segments = isSegmented(node) && isSegmentedKernel(k.name) ? segmentDescriptors(graph, node, deferred) : undefined;
      // What this launch computes: the node, or the one segment a segmented kernel launched a segment at a time runs.
      const launched = isSegmented(node) && !segments ? segmentNodes(node).find((n) => launch.args.some((a) => a.value === n.outputs[0]))! : node;
      const c: Case = {
        kernel: k.name, node: node.outputs[0], ops: ((node.attrs.ops as string[] | undefined) ?? [node.op]).join('+') + (segments ? ` [segments of ${segments.map((d) => d.rows).join(' + ')} rows]` : '') + label, check,
        outputs: outArgs.map((a) => ({ type: CUDA[typeOf(a.value).dtype]!, size: sampleCount(typeOf(a.value).shape.reduce((x, y) => x * y, 1), stride) })),
      };
      // Bytes a kernel must move: each argument's elements once (a view's, not its window's extent).
      c.bytes = launch.args.reduce((acc, a) => acc + WIDTH[CUDA[typeOf(a.value).dtype]!] * typeOf(a.value).shape.reduce((x, y) => x * y, 1), 0);
      if (conv) {
        const w = typeOf(node.inputs[1]).shape;
        c.flops = 2 * outSize * w[1] * w[2] * w[3];
        if (typeOf(node.inputs[0]).dtype === 'float32') c.tolerance = 1e-2; // operands rounded to bf16 for the tensor cores
      }
      if (sampled && conv) {
        const gen = (arg: number, i: number) => { const t = typeOf(inArgs[arg].value).dtype, u = uniform(i, seedBase + arg); return t === 'bfloat16' ? roundToBf16(u) : u; };
        c.expected = [convSamples(graph, node, stride, gen)];
      } else if (check && defer) {
        // No reference for a deferred reader here (the reference executor reads the dequantized
        // GEMM output): its outputs are saved, and its other tunings must give the same bits.
        c.saveOnly = true;
      } else if (check) {
        // Kernel arguments get the generated values; other inputs (shape constants) their own.
        const generated = new Map(inArgs.map((a) => [a.value, windowed(graph, a.value, (n) => generate(typeOf(a.value).dtype, [n], seedOf.get(a.value)!, mod(a)))]));
        // A load-time value the kernel does not read (a norm weight of constant ones, folded) from its producer.
        const value = (x: string): Tensor | undefined => {
          const got = generated.get(x) ?? (graph.constants.has(x) ? loadConstant(graph.constants.get(x)!, x) : undefined);
          if (got) return got;
          const p = graph.nodes.find((m) => m.outputs.includes(x));
          return p && (lookupOp(p)!.exec(p.inputs.map((y) => (y ? value(y) : undefined)), p) as Tensor[])[p.outputs.indexOf(x)];
        };
        const outs = lookupOp(launched)!.exec(launched.inputs.map((x) => (x ? value(x) : undefined)), launched) as Tensor[];
        c.expected = outArgs.map((a) => outs[launched.outputs.indexOf(a.value)].toNumbers().filter((_, i) => i % stride === 0));
      }
      cases.push(c);
      lines.push(`${k.name} ${k.grid} ${k.block} ${k.sharedBytes} ${sample ? 20 : check ? 0 : 50} ${check ? stride : 0} ${args.length} ${args.join(' ')}`);
      const rowKernel = isRowKernel(k);
      const base = cases.length - 1;
      if (check && rowKernel && k.grid > 2 && !c.saveOnly && !segments) {
        // Again on 2 CTAs: each loops over many rows, so the prefetch of the next row is exercised.
        cases.push({ ...c, ops: `${c.ops} (2 CTAs)` });
        lines.push(`${k.name} 2 ${k.block} ${k.sharedBytes} 0 1 ${args.length} ${args.join(' ')}`);
      }
      if (check && segments && !c.saveOnly) {
        // A segmented kernel's grid is split when rendered: the same kernel on 4 CTAs, 2 a segment.
        const v = renderSegmented(segments, node.outputs[0], 4)!;
        kernels.set(v.name, v);
        cases.push({ ...c, kernel: v.name, ops: `${c.ops} (4 CTAs)` });
        lines.push(`${v.name} ${v.grid} ${v.block} ${v.sharedBytes} 0 1 ${args.length} ${args.join(' ')}`);
      }
      if (!check && segments) {
        // The baseline of a segmented kernel, timed in the same run: each segment as its own launch
        // (what the model ran before passes/fuse-horizontal.ts), on its share of the same arguments.
        let at = 0;
        segments.forEach((d, s) => {
          const v = renderElementwise(d);
          const n = launchValues(d).length;
          const own = launch.args.slice(at, at + n);
          at += n;
          const ownArgs = own.map((a) => (outputs.has(a.value) ? outArg(a.value) : inArg(a.value, seedOf.get(a.value)!)));
          kernels.set(v.name, v);
          cases.push({ ...c, kernel: v.name, ops: `${c.ops}: segment ${s} alone (${d.rows} rows)`, bytes: own.reduce((acc, a) => acc + WIDTH[CUDA[typeOf(a.value).dtype]!] * typeOf(a.value).shape.reduce((x, y) => x * y, 1), 0) });
          lines.push(`${v.name} ${v.grid} ${v.block} ${v.sharedBytes} 50 0 ${ownArgs.length} ${ownArgs.join(' ')}`);
        });
      }
      const own = () => elementwiseDescriptor(graph, launched, deferred);
      for (const t of check && rowKernel && !sample && !segments ? CHECKED_TUNINGS : []) {
        // On 2 CTAs (the rows loop through the ring), so outputs.bin stays small.
        const v = renderElementwise(withRowTuning(own(), t));
        if (v.name === k.name) continue;
        kernels.set(v.name, v);
        const grid = Math.min(v.grid, 2);
        cases.push({ ...c, ...(c.saveOnly ? { saveOnly: undefined, sameAs: base } : {}), kernel: v.name, ops: `${c.ops} [${tuningLabel(t)}]${grid === 2 ? ' (2 CTAs)' : ''}` });
        lines.push(`${v.name} ${grid} ${v.block} ${v.sharedBytes} 0 1 ${args.length} ${args.join(' ')}`);
      }
      if (!check && rowKernel && !segments) {
        // Row-kernel tuning, timed side by side: CTAs per SM fixed at 1-4 beside the number
        // rowCtasPerSm derives from the row arrays' registers (the default).
        for (const t of ROW_TUNINGS) {
          const v = renderElementwise(withRowTuning(own(), t));
          if (kernels.has(v.name)) continue;
          kernels.set(v.name, v);
          cases.push({ ...c, kernel: v.name, ops: `${c.ops} [${tuningLabel(t)}, ${v.block} threads, ${v.sharedBytes} B smem]` });
          lines.push(`${v.name} ${v.grid} ${v.block} ${v.sharedBytes} 50 0 ${args.length} ${args.join(' ')}`);
        }
      }
    }
  }
  const report = await buildKernels([{ name: 'elementwise', source: renderUnit([...kernels.values()]), hot: false }], { target: 'h100', cacheDir: join(ROOT, '.gpu', 'build-cache') });
  writeFileSync(join(dir, 'kernels.cubin'), report.cubins.get('elementwise')!);
  writeFileSync(join(dir, 'cases.txt'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'expected.json'), JSON.stringify(cases));
  const fns = report.units[0].functions;
  console.log(`${cases.length} kernels (${cases.filter((c) => c.check).length} checked), cubin ${report.units[0].cubinBytes} bytes, max registers ${Math.max(...fns.map((f) => f.registers))}, spills ${report.spills}`);
  const regs = new Map(fns.map((f) => [f.name, f.registers]));
  for (const c of cases.filter((x) => !x.check && isRowCase(x))) console.log(`  ${c.kernel} ${c.ops}: ${regs.get(c.kernel)} registers, grid ${kernels.get(c.kernel)?.grid}`);
  for (const f of fns.filter((x) => x.spillStoreBytes || x.spillLoadBytes)) console.log(`  spills: ${f.name} (${cases.find((c) => c.kernel === f.name)?.ops}): ${f.registers} registers, ${f.spillStoreBytes} B stored`);
}

function decode(buf: Buffer, offset: number, type: CudaType, n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    switch (type) {
      case 'float': out[i] = buf.readFloatLE(offset + 4 * i); break;
      case 'double': out[i] = buf.readDoubleLE(offset + 8 * i); break;
      case 'bf16': out[i] = new Float32Array(new Uint32Array([buf.readUInt16LE(offset + 2 * i) << 16]).buffer)[0]; break;
      case 'fp8e4m3': out[i] = buf[offset + i]; break; // compared as codes
      case 'bool': case 'uint8': out[i] = buf[offset + i]; break;
      case 'int64': out[i] = Number(buf.readBigInt64LE(offset + 8 * i)); break;
      default: throw new Error(`decode ${type}`);
    }
  }
  return out;
}

/** Packed e2m1 codes (two per byte, element 2i low) that differ from the simulation's. */
function nvfp4CodeMismatches(bytes: Buffer, want: number[]): number {
  let bad = 0;
  want.forEach((w, i) => { bad += ((bytes[i] ^ w) & 0x0f ? 1 : 0) + ((bytes[i] ^ w) & 0xf0 ? 1 : 0); });
  return bad;
}

/** Largest relative difference of the kernel's effective block scales (e4m3 code times the global
 * scale stored after the codes, 16-byte aligned) from the simulation's; exact arithmetic gives 0. */
function nvfp4ScaleError(bytes: Buffer, want: number[]): number {
  const g = bytes.readFloatLE(Math.ceil(want.length / 16) * 16);
  return want.reduce((m, w, i) => Math.max(m, Math.abs(Math.fround(decodeE4M3(bytes[i]) * g) - w) / Math.max(Math.abs(w), 1e-30)), 0);
}

function check(dir: string, results: string): void {
  const cases: Case[] = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  const buf = readFileSync(join(results, 'outputs.bin'));
  const log = readFileSync(join(results, 'log.txt'), 'utf8');
  let offset = 0, failed = 0;
  console.log(log.split('\n').find((l) => l.startsWith('device')));
  console.log('| kernel | ops | output | error | result |\n| --- | --- | --- | ---: | --- |');
  // Outputs of the cases others are compared with (sameAs), by case index.
  const saved = new Map<number, number[][]>();
  let passed = 0;
  cases.forEach((c, ci) => {
    if (!c.check) return;
    if (c.saveOnly) {
      saved.set(ci, c.outputs.map((o) => { const got = decode(buf, offset, o.type as CudaType, o.size); offset += o.size * WIDTH[o.type as CudaType]; return got; }));
      return;
    }
    if (c.sameAs !== undefined) {
      const ref = saved.get(c.sameAs)!;
      let bad = 0;
      c.outputs.forEach((o, k) => {
        const got = decode(buf, offset, o.type as CudaType, o.size);
        offset += o.size * WIDTH[o.type as CudaType];
        const differ = got.reduce((n, g, i) => n + (Object.is(g, ref[k][i]) ? 0 : 1), 0);
        bad += differ;
        console.log(`| ${c.kernel} | ${c.ops} | ${k} ${o.type} | ${differ} differ from ${cases[c.sameAs!].kernel} | ${differ ? 'FAIL' : 'ok'} |`);
      });
      if (bad) failed++; else passed++;
      return;
    }
    let caseFailed = false;
    c.outputs.forEach((o, k) => {
      const want = c.expected![k];
      if (o.type === 'nvfp4q' || o.type === 'nvfp4s') {
        const bytes = buf.subarray(offset, offset + o.bytes!);
        offset += o.bytes!;
        const err = o.type === 'nvfp4q' ? nvfp4CodeMismatches(bytes, want) : nvfp4ScaleError(bytes, want);
        const ok = err === 0;
        if (!ok) caseFailed = true;
        console.log(`| ${c.kernel} | ${c.ops} | ${k} ${o.type === 'nvfp4q' ? 'e2m1 codes' : 'block scales'} | ${o.type === 'nvfp4q' ? `${err} codes differ` : err.toExponential(2)} | ${ok ? 'ok' : 'FAIL'} |`);
        return;
      }
      const got = decode(buf, offset, o.type, o.size);
      offset += o.size * WIDTH[o.type];
      let err: number, ok: boolean;
      if (o.type === 'fp8e4m3') {
        const codes = want.map((v) => encodeE4M3(v));
        err = got.reduce((m, g, i) => Math.max(m, Math.abs((g & 0x7f) - (codes[i] & 0x7f)) + ((g & 0x80) !== (codes[i] & 0x80) && (codes[i] & 0x7f) ? 256 : 0)), 0);
        ok = err <= 1;
      } else {
        let num = 0, den = 0, nanMismatch = 0;
        got.forEach((g, i) => {
          if (Number.isNaN(want[i]) || Number.isNaN(g)) { if (Number.isNaN(want[i]) !== Number.isNaN(g)) nanMismatch++; return; }
          num += (g - want[i]) ** 2; den += want[i] ** 2;
        });
        err = nanMismatch ? Infinity : Math.sqrt(num / Math.max(den, 1e-30));
        ok = err <= (c.tolerance ?? (o.type === 'float' || o.type === 'double' ? 1e-4 : 1e-2));
      }
      if (!ok) caseFailed = true;
      console.log(`| ${c.kernel} | ${c.ops} | ${k} ${o.type} | ${o.type === 'fp8e4m3' ? `${err} codes` : err.toExponential(2)} | ${ok ? 'ok' : 'FAIL'} |`);
    });
    if (caseFailed) failed++; else passed++;
  });
  const copyLine = log.split('\n').find((l) => l.startsWith('copy '));
  const copy = copyLine ? Number(copyLine.split(' ')[2]) / Number(copyLine.split(' ')[1]) / 1e3 : undefined;
  if (copy) console.log(`\nbaseline: device-to-device copy ${copy.toFixed(0)} GB/s (read + write)`);
  // Same-size copies (harness `copysize`: a device-to-device copy moving the bytes the case's buffers hold).
  const sameSize = new Map(log.split('\n').filter((l) => l.startsWith('copysize ')).map((l) => {
    const [, name, us, bytes] = l.split(' ');
    return [name, Number(bytes) / Number(us) / 1e3] as const;
  }));
  console.log('\n| kernel | ops | µs | GB/s | % of copy | % of a same-size copy | TFLOP/s |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const line of log.split('\n').filter((l) => l.startsWith('time '))) {
    const [, name, us, bytes] = line.split(' ');
    const c = cases.find((x) => x.kernel === name.split(':')[0]);
    const gbs = (c?.bytes ?? Number(bytes)) / Number(us) / 1e3;
    const same = sameSize.get(name);
    console.log(`| ${name} | ${c?.ops} | ${Number(us).toFixed(1)} | ${gbs.toFixed(0)} | ${copy ? `${((100 * gbs) / copy).toFixed(0)}%` : ''} | ${same ? `${((100 * gbs) / same).toFixed(0)}% (copy ${same.toFixed(0)} GB/s)` : ''} | ${c?.flops ? (c.flops / Number(us) / 1e6).toFixed(0) : ''} |`);
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  if (failed) process.exitCode = 1;
}

const [cmd, dir, results] = process.argv.slice(2);
if (cmd === 'prepare') await prepare(dir, results);
else if (cmd === 'check') check(dir, results);
else console.log('usage: cases.ts prepare DIR [vae] | check DIR RESULTS');
