/**
 * compileModel: the compiler's stages in order, as a library call (the CLI is a thin shell).
 *
 *   import (lazy weights) -> specialise (--shape/--size/--text-length, then --batch) -> infer -> pass pipeline
 *   -> verify (optional, CPU reference) -> write artifact (atomically)
 *
 * Every user-facing failure is a CompileError raised before anything is written. Code generation
 * and the nvcc build arrive with the codegen issue; `build` is null until then.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type PassReport, pipelineFor, runPipeline } from '../passes/pipeline.ts';
import type { HorizontalOptions } from '../passes/fuse-horizontal.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { type PrecisionPolicy, defaultPolicy, loadPolicy } from '../passes/quantize/policy.ts';
import { type GemmReport, withWeightErrors } from './quant/report.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { countLaunches, type LaunchReport } from './launches.ts';
import { memoPlan } from './memo.ts';
import { buildKernels } from './build/index.ts';
import { spills } from './build/ptxas.ts';
import { type KernelPlan, deferDequant, kernelPlan } from './codegen/plan.ts';
import { lateReads } from './codegen/dequant.ts';
import { isSegmentedKernel, renderUnit } from './codegen/render.ts';
import { OWN_GEMM_MIN_TILES } from './codegen/gemm.ts';
import { writeArtifact } from './artifact.ts';
import { type WeightEntry, describeWeights, type WeightsDescription, type WeightsIndex, weightsPresent, writeWeights } from './weights-file.ts';
import { fail } from './errors.ts';
import { type Graph, formatType, symbolicDims } from './ir/graph.ts';
import { inferTypes } from './ir/infer.ts';
import { bytesFor, type DType } from './ir/dtype.ts';
import { printGraph } from './ir/print.ts';
import { type ShapeBindings, specialise } from './ir/specialise.ts';
import { rebatch } from './ir/rebatch.ts';
import { resequence } from './ir/resequence.ts';
import { type LatentSize, resize } from './ir/resize.ts';
import { bindCheckpoint, type CheckpointFacts } from './onnx/checkpoint.ts';
import { importOnnx } from './onnx/import.ts';
import { renderReport } from './report.ts';
import { countFlops, opHistogram, parameterBytes } from './stats.ts';
import { VERIFY_TOLERANCE, type VerifyResult, verifyGraph } from './verify.ts';

export { ROOT } from './paths.ts';
import { ROOT } from './paths.ts';
import { bundledSpecPath } from './full-models.ts';
import { sha256, sha256File } from './hash.ts';
export const DEFAULT_MODEL = join(ROOT, 'models', 'tiny', 'flux2', 'model.onnx');
/** 4: kernel launches may pass tensor maps (Launch.maps: the own FP8 GEMM), which a format-3 runtime would pass as pointers. */
export const ARTIFACT_FORMAT = 4;

export const TARGETS = { h100: { arch: 'sm_90a', defaultPrecision: 'fp8' }, b200: { arch: 'sm_100a', defaultPrecision: 'nvfp4' } } as const;
export type Target = keyof typeof TARGETS;
export const PRECISIONS = ['fp32', 'bf16', 'fp8', 'nvfp4'] as const;
export type Precision = (typeof PRECISIONS)[number];

export interface CompileOptions {
  model?: string;
  target?: string;
  out?: string;
  shape?: ShapeBindings;
  /** Samples per run for a graph exported with batch 1 (compiler/ir/rebatch.ts); default 1. */
  batch?: number;
  /** Text tokens per run: binds a symbolic text dim (over `shape`'s binding of it), or re-specialises a static export's (compiler/ir/resequence.ts). */
  textLength?: number;
  /** Another module's weight entries (of the same pipeline artifact, its manifest's weights.tensors): the learned weights it holds the same are described, not written (weights-file.ts `shared`). */
  weightsFrom?: readonly WeightEntry[];
  /** A safetensors checkpoint (file or folder) holding the weights, in place of the export's external data (compiler/onnx/checkpoint.ts). */
  weights?: string;
  /**
   * "WxH", the image size: a transformer takes (W / 2s) x (H / 2s) image tokens — binding an img_tokens
   * dim, else re-specialising the static export (compiler/ir/resize.ts) — and a VAE decoder W / s x H / s
   * latents, s = `vaeScaleFactor`.
   */
  size?: string;
  /** Image pixels per latent pixel for `size` (a pipeline's vaeScaleFactor); default: a VAE decoder's own (its image over its latents), else 8 (both families' VAEs). */
  vaeScaleFactor?: number;
  precision?: string;
  verify?: string;
  /** JSON precision policy (see passes/quantize/policy.ts). */
  policy?: string;
  /** Allow a precision the target cannot run natively (nvfp4 on h100), simulated. */
  emulate?: boolean;
  build?: boolean;
  dumpAfter?: string[];
}

/** The --json contract (../shared/DESIGN.md "Contracts"); keys are never renamed. */
export interface CompileSummary {
  artifact: string;
  model: string;
  source: string;
  target: Target;
  precision: Precision;
  nodes: { input: number; optimized: number };
  launches: number;
  /** Launches per transformer block (and outside blocks): the fusion passes' result. */
  launchReport: LaunchReport;
  fusedAttention: number;
  memory: { arenaBytes: number; maxLiveBytes: number; naiveBytes: number } | null;
  flops: number;
  parameters: { count: number; bytes: number };
  shapes: Record<string, string>;
  verify: VerifyResult | null;
  /** Per GEMM: precision, the reason, and (when the weights are present) the weight error. */
  gemms: GemmReport[];
  build: { kernels: number; cached: number; spills: number; seconds: number; units: number; nvcc: string } | null;
  /** weights.bin written into the artifact (null when the export carries no weights). */
  weights: { bytes: number; tensors: number; quantized: number } | null;
  /** With --weights: the checkpoint the weights came from, and how its keys matched the initializers. */
  checkpoint?: CheckpointFacts;
  stages: Record<string, number>;
  passes: PassReport[];
  seconds: number;
}

export function resolveModelPath(model: string | undefined): string {
  if (!model) return DEFAULT_MODEL;
  // bundled:NAME: one of the full-size structure-only exports in models/full (compiler/full-models.ts).
  const bundled = bundledSpecPath(model, (expected, name) => fail(model, expected, `'${name}'`));
  if (bundled) return bundled;
  const p = resolve(model);
  if (existsSync(p) && statSync(p).isDirectory()) {
    const inside = join(p, 'model.onnx');
    if (!existsSync(inside)) fail(model, 'an .onnx file or a folder holding model.onnx', 'a folder without model.onnx');
    return inside;
  }
  if (!existsSync(p)) fail(model, 'an ONNX model file', 'no such file');
  return p;
}

function checkTarget(target: string | undefined): Target {
  const t = target ?? 'h100';
  if (!(t in TARGETS)) fail('--target', `one of ${Object.keys(TARGETS).join(', ')}`, `'${t}'`);
  return t as Target;
}

function checkPrecision(precision: string | undefined, target: Target, emulate: boolean): Precision {
  const p = precision ?? TARGETS[target].defaultPrecision;
  if (!(PRECISIONS as readonly string[]).includes(p)) fail('--precision', `one of ${PRECISIONS.join(', ')}`, `'${p}'`);
  if (p === 'nvfp4' && target === 'h100' && !emulate) {
    fail('--precision', 'a precision h100 runs natively (fp32, bf16, fp8); nvfp4 needs sm_100 (pass --emulate to simulate it anyway)', "'nvfp4'");
  }
  return p as Precision;
}

/** `--size WxH` in latent pixels, checked: whole 2 x 2 patches of latent pixels (16 image pixels at scale 8). */
export function parseSize(size: string, vaeScaleFactor = 8, flag = '--size'): LatentSize & { text: string } {
  const m = /^(\d+)x(\d+)$/.exec(size);
  if (!m) fail(flag, 'WIDTHxHEIGHT, e.g. 1024x1024 (one size for one network; a pipeline takes a list)', `'${size}'`);
  const [w, h] = [Number(m[1]), Number(m[2])], unit = 2 * vaeScaleFactor;
  if (w % unit || h % unit || !w || !h) fail(flag, `width and height that are positive multiples of ${unit} (2 x the VAE's scale factor ${vaeScaleFactor})`, `${w}x${h}`);
  return { width: w / vaeScaleFactor, height: h / vaeScaleFactor, text: `${w}x${h}` };
}

/** A VAE decoder's own scale factor: its image's width over its latents' (the tiny ones' 2, the real ones' 8); undefined for other graphs. */
export function decoderScale(graph: Graph): number | undefined {
  if (!graph.inputs.includes('latents') || graph.outputs.length !== 1) return undefined;
  const latents = (graph.types.get('latents') as { shape?: unknown[] } | undefined)?.shape;
  const image = (inferTypes(graph).graph.types.get(graph.outputs[0]) as { shape?: unknown[] } | undefined)?.shape;
  const [w, W] = [latents?.at(-1), image?.at(-1)];
  return typeof w === 'number' && typeof W === 'number' && w > 0 && W % w === 0 ? W / w : undefined;
}

/** A transformer with an img_tokens dim binds it to the size's tokens; anything else is re-specialised after (resize). */
function sizeBindings(size: (LatentSize & { text: string }) | undefined, graph: Graph): Record<string, number> {
  return size && symbolicDims(graph).includes('img_tokens') ? { img_tokens: (size.width / 2) * (size.height / 2) } : {};
}

/** The symbolic dim of encoder_hidden_states' text axis (Flux.2's txt_tokens), if the export has one. */
function textDim(graph: Graph): string | undefined {
  const t = graph.types.get('encoder_hidden_states');
  const d = t?.kind === 'tensor' ? t.shape[1] : undefined;
  return typeof d === 'string' ? d : undefined;
}

/** The kernel cache (content-hash keyed cubins): $DC_KERNEL_CACHE, else .cache/kernels in the project. */
export const kernelCacheDir = () => process.env.DC_KERNEL_CACHE ?? join(ROOT, '.cache', 'kernels');

/** The runtime's own kernels (synthetic weight fill, the denoising loop's Euler steps, RGB8 of an image), built into every artifact: runtime/gpu/support.cu. */
export const SUPPORT_UNIT = { unit: 'runtime_support', fill: 'dc_fill', euler: 'dc_euler_step', cfgEuler: 'dc_cfg_euler_step', rgb8: 'dc_rgb8' } as const;

/**
 * Builds the plan's kernels (buildPlan). Segmented kernels (compiler/codegen/render.ts
 * renderSegmented) may spill where their segments alone do not: ptxas allocates the inlined bodies
 * jointly (seen with a Qwen-Image pair whose text segment sat at its 128-register cap alone). The
 * first build tolerates their spills; those that spilled are launched as their segments: `replan`
 * makes the plan again with them separate, and it is rebuilt (any spill then fails the build).
 */
export async function buildWithSegments(plan: KernelPlan, target: Target, replan: (separate: ReadonlySet<string>) => KernelPlan): Promise<{ plan: KernelPlan; report: Awaited<ReturnType<typeof buildPlan>> }> {
  const first = await buildPlan(plan, target, isSegmentedKernel);
  const spilled = new Set(first.units.flatMap((u) => u.functions).filter((f) => spills(f) && isSegmentedKernel(f.name)).map((f) => f.name));
  if (!spilled.size) return { plan, report: first };
  const separate = replan(spilled);
  return { plan: separate, report: await buildPlan(separate, target) };
}

/** Builds the plan's kernels with nvcc: hot kernels in one unit (no spills allowed, but for those tolerated), the rest apart, and the runtime's support unit. */
async function buildPlan(plan: KernelPlan, target: Target, tolerate?: (functionName: string) => boolean) {
  const hot = plan.kernels.filter((k) => k.hot), cold = plan.kernels.filter((k) => !k.hot);
  const tolerated = new Set(hot.filter((k) => k.spillsTolerated).map((k) => k.name));
  const tolerateSpills = (fn: string) => tolerated.has(fn) || !!tolerate?.(fn);
  const units = [
    ...(hot.length ? [{ name: 'kernels_hot', source: renderUnit(hot), hot: true }] : []),
    ...(cold.length ? [{ name: 'kernels_cold', source: renderUnit(cold), hot: false }] : []),
    { name: SUPPORT_UNIT.unit, source: readFileSync(join(ROOT, 'runtime', 'gpu', 'support.cu'), 'utf8'), hot: false },
  ];
  return buildKernels(units, { target, cacheDir: kernelCacheDir(), tolerateSpills });
}

/** The own FP8 GEMM (policy gemm "own") where it runs: sm_90a code, so h100 only (b200 keeps cuBLASLt). */
export function ownGemmFor(policy: PrecisionPolicy | undefined, target: Target): { promote: number; minTiles: number } | undefined {
  return policy?.gemm === 'own' && target === 'h100' ? { promote: policy.accumulation === 'fp32' ? 8 : 0, minTiles: policy.ownGemmMinTiles ?? OWN_GEMM_MIN_TILES } : undefined;
}

/** Twin GEMMs as one launch (passes/fuse-horizontal.ts): where the own kernel runs them with fast accumulation and its scales in its epilogue. */
export function horizontalFor(policy: PrecisionPolicy | undefined, target: Target): HorizontalOptions {
  const own = ownGemmFor(policy, target);
  return own && !own.promote && policy?.gemmScales !== 'readers' ? { gemms: { minTiles: own.minTiles } } : {};
}

export async function compileModel(options: CompileOptions): Promise<CompileSummary> {
  const start = performance.now();
  const stages: Record<string, number> = {};
  const stage = <T>(name: string, fn: () => T): T => {
    const t0 = performance.now();
    const r = fn();
    stages[name] = (stages[name] ?? 0) + performance.now() - t0;
    return r;
  };
  const stageAsync = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    stages[name] = (stages[name] ?? 0) + performance.now() - t0;
    return r;
  };
  const target = checkTarget(options.target);
  const precision = checkPrecision(options.precision, target, !!options.emulate);
  const policy: PrecisionPolicy | undefined = precision === 'fp32' ? undefined
    : options.policy ? loadPolicy(options.policy, precision) : defaultPolicy(precision);
  const source = resolveModelPath(options.model);
  const modelName = source === DEFAULT_MODEL || basename(source) === 'model.onnx' ? basename(dirname(source)) : basename(source, '.onnx');

  let checkpoint: CheckpointFacts | undefined;
  const imported = stage('import', () => {
    const graph = importOnnx(source).graph;
    if (!options.weights) return graph;
    const { graph: bound, ...facts } = bindCheckpoint(graph, options.weights);
    checkpoint = facts;
    return bound;
  });
  const specialised = stage('specialise', () => {
    const text = textDim(imported);
    // --size and --text-length win over a --shape binding of their dims (a pipeline's shapes give the transformer's default size and text length).
    const size = options.size === undefined ? undefined : parseSize(options.size, options.vaeScaleFactor ?? decoderScale(imported));
    const bindings = { ...options.shape, ...sizeBindings(size, imported), ...(options.textLength && text ? { [text]: options.textLength } : {}) };
    const g = specialise(imported, bindings);
    const left = symbolicDims(g);
    if (left.length) fail(source, `values for the symbolic dims (${left.map((d) => `--shape ${d}=N`).join(', ')})`, `unbound: ${left.join(', ')}`);
    const sized = size && !sizeBindings(size, imported).img_tokens ? resize(g, size, `--size ${size.text}`) : g;
    const sequenced = options.textLength && !text ? resequence(sized, options.textLength) : sized;
    return options.batch && options.batch !== 1 ? rebatch(sequenced, options.batch) : sequenced;
  });
  const inferred = stage('infer', () => inferTypes(specialised));
  // Graph dumps go beside the artifact (ARTIFACT.dumps/): the artifact folder itself is replaced
  // atomically at the end, which would take them with it.
  const dumpDir = options.dumpAfter?.length ? `${resolve(options.out ?? join('artifacts', `${modelName}-${target}-${precision}`))}.dumps` : undefined;
  if (dumpDir) mkdirSync(dumpDir, { recursive: true });
  const quantize = policy && insertQuantize(policy, target);
  const ownGemm = ownGemmFor(policy, target);
  const horizontal = horizontalFor(policy, target);
  const optimised = stage('passes', () => runPipeline(inferred, { passes: pipelineFor(quantize, horizontal), dumpAfter: options.dumpAfter, dumpDir }));
  const gemms: GemmReport[] = quantize ? [...quantize.decisions] : []; // their weights' errors once weights.bin is written
  const graph = optimised.graph;

  const launchReport = stage('plan', () => countLaunches(graph));
  // FP8 GEMMs whose readers apply the scales (compiler/codegen/dequant.ts), unless the policy keeps
  // them in the GEMM: all of them ("gemm"), or those the own kernel runs ("auto").
  const deferred = stage('plan', () => (policy?.gemmScales === 'gemm' ? new Map() : deferDequant(graph, ownGemm && policy?.gemmScales === 'auto' ? ownGemm : undefined)));
  const memory = stage('plan', () => planMemory(graph, lateReads(graph, deferred)));
  const planOptions = { fastAccum: policy?.accumulation === 'fast', ...(ownGemm ? { ownGemm } : {}) };
  let plan = stage('codegen', () => kernelPlan(graph, memory, deferred, planOptions));
  const verify = options.verify ? stage('verify', () => verifyGraph(graph, resolve(options.verify!), VERIFY_TOLERANCE[precision])) : null;
  if (verify && !verify.passed) {
    fail(`--verify ${options.verify}`, `relative L2 error <= ${verify.tolerance} and cosine >= ${verify.minCosine} (${precision})`, `${verify.relL2.toExponential(3)} (cosine ${verify.cosine.toFixed(6)}); no artifact written`);
  }

  const artifact = resolve(options.out ?? join('artifacts', `${modelName}-${target}-${precision}`));
  const summary: CompileSummary = {
    artifact, model: modelName, source, target, precision,
    nodes: { input: imported.nodes.length, optimized: graph.nodes.length },
    launches: launchReport.total, launchReport,
    fusedAttention: graph.nodes.filter((n) => n.domain === 'dc' && (n.op === 'FusedAttention' || n.op === 'PackedAttention')).length, // lowered or not
    memory: { arenaBytes: memory.arenaBytes, maxLiveBytes: memory.maxLiveBytes, naiveBytes: memory.naiveBytes },
    flops: countFlops(graph),
    parameters: parameterBytes(graph),
    shapes: Object.fromEntries([...graph.inputs, ...graph.outputs].map((n) => [n, formatType(graph.types.get(n)!)])),
    verify, gemms, build: null, weights: null, ...(checkpoint ? { checkpoint } : {}), stages, passes: optimised.reports, seconds: 0,
  };
  // nvcc: every generated kernel for the target (a failure names the kernel; nothing is written).
  let cubins = new Map<string, Uint8Array>();
  if (options.build !== false) {
    const t0 = performance.now();
    const built = await buildWithSegments(plan, target, (separate) => stage('codegen', () => kernelPlan(graph, memory, deferred, { ...planOptions, separate })));
    const report = built.report;
    plan = built.plan;
    stages.build = performance.now() - t0;
    cubins = report.cubins;
    summary.build = { kernels: plan.kernels.length, cached: report.cached, spills: report.spills, seconds: report.seconds, units: report.kernels, nvcc: report.nvccVersion };
  }
  await stageAsync('write', async () => {
    const sourceHash = sha256File(source);
    const graphText = printGraph(graph);
    const memo = memoPlan(graph, memory, plan.launches);
    const manifest = {
      format: ARTIFACT_FORMAT, compiler: readPackageVersion(), target, arch: TARGETS[target].arch, precision,
      model: modelName, source: { path: source, sha256: sourceHash, ...(checkpoint ? { weights: checkpoint } : {}) },
      ...(graph.batch && graph.batch > 1 ? { batch: graph.batch } : {}),
      inputs: Object.fromEntries(graph.inputs.map((n) => [n, formatType(graph.types.get(n)!)])),
      outputs: Object.fromEntries(graph.outputs.map((n) => [n, formatType(graph.types.get(n)!)])),
      // For the runtime: where each graph input and output lives in the arena, and the type of every
      // value a launch reads or writes (GEMM operand dtypes, weight shapes).
      io: ioSpec(graph, memory),
      values: Object.fromEntries(plan.launches.flatMap((l) => l.args).map((a) => [a.value, formatType(graph.types.get(a.value)!)])),
      support: cubins.has(SUPPORT_UNIT.unit) ? SUPPORT_UNIT : null,
      nodes: summary.nodes, flops: summary.flops, parameters: summary.parameters, verify,
      launches: summary.launches, memory: summary.memory,
      arena: memory.buffers.map((b) => ({ value: b.value, offset: b.offset, bytes: b.bytes })),
      files: Object.fromEntries([
        ['graph.txt', sha256(graphText)],
        ...[...cubins].map(([unit, bytes]) => [`kernels/${unit}.cubin`, sha256(bytes)]),
      ]),
      kernels: plan.kernels.map((k) => ({ name: k.name, unit: k.hot ? 'kernels_hot' : 'kernels_cold', grid: k.grid, block: k.block, sharedBytes: k.sharedBytes })),
      launchPlan: plan.launches,
      pendingKernels: plan.pending,
      // The launches a step can restore instead of computing (compiler/memo.ts), where there are any.
      ...(memo ? { memo } : {}),
    };
    await writeArtifact(artifact, async (folder) => {
      // Weights: quantized and raw, in the kernels' layout, when the export carries them.
      let weights: WeightsIndex | WeightsDescription;
      const donor = options.weightsFrom;
      if (!weightsPresent(graph, existsSync)) {
        weights = describeWeights(graph, 'the export carries no weight data (structure only): the runtime generates synthetic weights', donor);
      } else {
        const t0 = performance.now();
        weights = await writeWeights(join(folder, 'weights.bin'), graph, donor);
        stages.weights = performance.now() - t0;
      }
      summary.weights = 'absent' in weights ? null : { bytes: weights.bytes, tensors: weights.tensors.length, quantized: weights.tensors.filter((t) => t.kind !== 'raw').length };
      summary.gemms = withWeightErrors(summary.gemms, weights.tensors);
      summary.seconds = (performance.now() - start) / 1000;
      return {
        'manifest.json': JSON.stringify({ ...manifest, weights }, null, 2) + '\n',
        'graph.txt': graphText,
        ...Object.fromEntries([...cubins].map(([unit, bytes]) => [`kernels/${unit}.cubin`, bytes])),
        'report.md': renderReport(summary, opHistogram(imported), opHistogram(graph)),
      };
    });
  });
  summary.seconds = (performance.now() - start) / 1000;
  return summary;
}

/** Graph inputs and outputs: dtype, shape and the arena byte range each lives in. */
function ioSpec(graph: Graph, memory: ReturnType<typeof planMemory>) {
  const spec = (name: string) => {
    const t = graph.types.get(name) as unknown as { dtype: string; shape: number[] };
    const buffer = memory.buffers.find((b) => b.value === memory.location.get(name));
    if (!buffer) fail(`graph value '${name}'`, 'a graph input or output that lives in the arena', 'a weight or constant');
    return { name, dtype: t.dtype, shape: [...t.shape], offset: buffer.offset, bytes: bytesFor(t.dtype as DType, t.shape.reduce((a, b) => a * b, 1)) };
  };
  return { inputs: graph.inputs.map(spec), outputs: graph.outputs.map(spec) };
}

function readPackageVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}
