/**
 * The precision policy: which GEMMs run in low precision (FP8 on h100, NVFP4 on b200) and which stay
 * in high precision, and why. Readable and overridable: `--policy FILE` takes JSON
 *
 *   { "keep": ["*.ff.linear_out.*"], "quantize": ["*proj_out*"], "structural": true, "attention": "auto",
 *     "gemmScales": "auto", "accumulation": "fast", "oneRowGemms": "fp8-weights" }
 *
 * `keep` / `quantize` are globs over weight names (user configuration, as in every FP8 recipe; the
 * rewrite rules themselves never look at names). Without them the structural defaults decide, the
 * high-precision set the best FP8/FP4 recipes use, recognised by structure instead of by name:
 *
 *   one row per sample (M = 1)       timestep/guidance embedders, AdaLN modulation   -> keep
 *     ... with a large weight          fused AdaLN modulation (fp8 policies)            -> FP8 weights only
 *   reads a graph input               input embedders (x_embedder, context_embedder)  -> keep
 *   writes a graph output             the final projection                            -> keep
 *   in a graph that convolves         the VAE decoders' attention projections          -> keep
 *   everything else                   attention projections, MLPs, fused projections  -> quantize
 *
 * A pattern that matches no GEMM weight is an error (a typo would silently change nothing).
 * `attention`: which attention computes Q·Kᵀ on 8 bits (fp8Attention): "auto" (default) the long
 * bidirectional ones of an fp8 policy, on s8 codes (int8Attention), with P·V on 8-bit integers where
 * there is no mask or a key mask (int8PvAttention; "int8-pv" pins that choice); "int8" the same with
 * bf16 P·V; "fp8-pv" the same attention with e4m3 Q·Kᵀ and P·V (fp8PvAttention: the default from
 * session 18 to 41); "fp8-qk" e4m3 Q·Kᵀ with bf16 P·V (the default until session 18); "fp8" e4m3
 * Q·Kᵀ in every attention; "bf16" none.
 * `gemmScales`: where an FP8 GEMM's per-token and per-channel scales and its bias are applied.
 * "readers" lets the kernels reading its output apply them (compiler/codegen/dequant.ts: cuBLASLt's
 * FP8 GEMM runs faster without its outer-vector scales; the bf16 rounding moves before the scaling);
 * "gemm" keeps them in the GEMM, so every GEMM output is QLinear's value (node-by-node comparisons,
 * and the baseline that measures the difference); "auto" (default): in the GEMM where the own
 * kernel runs it (its epilogue applies them to the accumulators, and the readers then read plain
 * bf16), in the readers where cuBLASLt does. Where no reader can apply them, any value keeps them in
 * the GEMM (cuBLASLt's epilogue, or the own kernel's).
 * `accumulation`: "fast" (default) lets cuBLASLt's FP8 GEMMs accumulate without its periodic
 * promotion of the tensor cores' partial sums to fp32 (CUBLASLT_MATMUL_DESC_FAST_ACCUM, what FP8
 * inference recipes use for forward passes): the FP8 GEMMs of a Flux.2 [dev] step 194-197 -> 181 ms
 * on an H100, full-size cosine against bf16 diffusers unchanged (bench/RESULTS.md, "Fast
 * accumulation"); one GEMM alone moves 1.4e-3-4.8e-3 from exact sums instead of 1.3e-4 (H100 80GB HBM3,
 * bench/RESULTS.md "Session 11: the FP8 GEMMs match", K = 3072-24576). An h100 compile
 * then simulates its GEMMs with the tensor cores' own arithmetic (dc.QLinear accumulate "sm90",
 * compiler/quant/tensor-core.ts), which the own kernel and cuBLASLt match bit for bit (bench/RESULTS.md,
 * "Session 11"). "fp32" keeps the promotion (simulated with exact sums). NVFP4 (block-scaled) GEMMs have no such mode.
 * `gemm`: "own" (default) or "cublaslt": the FP8 GEMMs run the compiler's own kernel
 * (compiler/codegen/gemm.ts ownGemm; h100 only, shapes it takes: N a multiple of 192, K of 128, at
 * least `ownGemmMinTiles` output tiles, Y bf16 or float32; with its scales in its epilogue, float32
 * scales and a float32 or bf16 bias), the rest cuBLASLt. By measurement on an H100 80GB HBM3 (bench/RESULTS.md "Session
 * 10"), with the scales in its epilogue (gemmScales "auto"): Flux.2 [dev] step 0-7 ms faster than with
 * cuBLASLt (252-255 against 259-262 ms in two calls, even in two more on another machine; its readers no
 * longer dequantize: element-wise 20 -> 15 ms a step, launch by launch), Qwen-Image even (its K = 3072
 * GEMMs lose what the readers gain); outputs as close to diffusers' bf16 model.
 * `ownGemmMinTiles` (default 264, two a CTA on an H100): the own kernel takes a GEMM of at least
 * that many 128 x 192 output tiles; thinner ones (text streams of 256-512 tokens over a narrow N)
 * stay with cuBLASLt, which splits K (0.48-0.94x there, bench/RESULTS.md "Session 10: thin GEMMs"). With "accumulation": "fp32" the own kernel
 * adds the tensor cores' sums into fp32 every 8 K blocks (7.2e-4 from the simulation on an H100 80GB
 * HBM3, bench/RESULTS.md "Session 9: the compiler's own FP8 GEMM").
 * `oneRowGemms`: "fp8-weights" (default) turns a one-row GEMM whose weight holds at least
 * `oneRowMinBytes` (default 256 MiB in its graph type; K a multiple of 16) into a weight-only FP8
 * GEMV (dc.WQLinear, compiler/codegen/gemv.ts): e4m3 weights with an fp32 scale per output channel,
 * the activation left in its type, fp32 accumulation. Such a GEMM is memory-bound (M = 1), so
 * halving its bytes halves its time: Qwen-Image's fused modulation (121 Linears, 2217984 x 3072,
 * 13.6 GB of bf16 per pass) took 4.8 ms of a ~99 ms pass on an H100 as one bf16 cuBLASLt GEMV
 * (bench/RESULTS.md; the FP8 figure: bench/results/fp8-gemv-2026-11-26.md). The threshold keeps the
 * timestep/guidance embedders (at most 75 MB, Flux.2's 6144 x 6144) in bf16: their time is
 * negligible. Flux.2's fused modulation (104448 x 6144, 1.28 GB) qualifies too. "high" keeps every
 * one-row GEMM in high precision (the old behaviour). Only for fp8 policies: NVFP4 (b200) keeps
 * one-row GEMMs in high precision (no weight-only FP4 kernel).
 */
import { readFileSync } from 'node:fs';
import { fail } from '../../compiler/errors.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import { producers } from '../../compiler/ir/graph.ts';
import { bytesFor } from '../../compiler/ir/dtype.ts';
import type { QuantFormat } from '../../compiler/ops/quant.ts';

export interface PrecisionPolicy {
  format: QuantFormat;
  keep: string[];
  quantize: string[];
  structural: boolean;
  attention: 'bf16' | 'fp8' | 'auto' | 'fp8-qk' | 'fp8-pv' | 'int8' | 'int8-pv';
  gemmScales: 'readers' | 'gemm' | 'auto';
  accumulation: 'fast' | 'fp32';
  gemm: 'cublaslt' | 'own';
  oneRowGemms: 'fp8-weights' | 'high';
  /** Weight bytes (graph type) from which a one-row GEMM takes the weight-only FP8 path. */
  oneRowMinBytes: number;
  /** Output tiles (128 x 192) from which the own FP8 GEMM takes a GEMM (`gemm` "own"); unset: the kernel's own rule (compiler/codegen/gemm.ts OWN_GEMM_MIN_TILES). */
  ownGemmMinTiles?: number;
  /** Where the policy came from, for messages. */
  source: string;
}

export interface GemmDecision {
  node: string;
  weights: string[];
  shape: number[];
  /** Weight layout [N, K] (PyTorch's) when true, else [K, N]. */
  transB: boolean;
  quantized: boolean;
  /** Quantized weight only (FP8 e4m3, per output channel): the activation keeps its type (dc.WQLinear). */
  weightOnly?: true;
  reason: string;
}

/** The default `oneRowMinBytes`: 256 MiB (header). */
export const ONE_ROW_MIN_BYTES = 256 * 2 ** 20;

export function defaultPolicy(format: QuantFormat): PrecisionPolicy {
  return { format, keep: [], quantize: [], structural: true, attention: 'auto', gemmScales: 'auto', accumulation: 'fast', gemm: 'own', oneRowGemms: 'fp8-weights', oneRowMinBytes: ONE_ROW_MIN_BYTES, source: 'default policy' };
}

export function loadPolicy(file: string, format: QuantFormat): PrecisionPolicy {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`--policy ${file}`, 'a readable JSON policy file', (e as Error).message);
  }
  const p = raw as Record<string, unknown>;
  const known = ['keep', 'quantize', 'structural', 'attention', 'gemmScales', 'accumulation', 'gemm', 'ownGemmMinTiles', 'oneRowGemms', 'oneRowMinBytes'];
  for (const k of Object.keys(p)) if (!known.includes(k)) fail(`--policy ${file}`, `only the keys ${known.join(', ')}`, `'${k}'`);
  const list = (k: string) => {
    const v = p[k] ?? [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(`--policy ${file}`, `"${k}" to be a list of weight-name globs`, JSON.stringify(v));
    return v as string[];
  };
  const attention = (p.attention ?? 'auto') as string;
  if (!['bf16', 'fp8', 'auto', 'fp8-qk', 'fp8-pv', 'int8', 'int8-pv'].includes(attention)) fail(`--policy ${file}`, '"attention" to be "auto", "bf16", "fp8", "fp8-qk", "fp8-pv", "int8" or "int8-pv"', JSON.stringify(p.attention));
  const gemmScales = (p.gemmScales ?? 'auto') as string;
  if (!['auto', 'readers', 'gemm'].includes(gemmScales)) fail(`--policy ${file}`, '"gemmScales" to be "auto", "readers" or "gemm"', JSON.stringify(p.gemmScales));
  const accumulation = (p.accumulation ?? 'fast') as string;
  if (accumulation !== 'fast' && accumulation !== 'fp32') fail(`--policy ${file}`, '"accumulation" to be "fast" or "fp32"', JSON.stringify(p.accumulation));
  const gemm = (p.gemm ?? 'own') as string;
  if (gemm !== 'cublaslt' && gemm !== 'own') fail(`--policy ${file}`, '"gemm" to be "own" or "cublaslt"', JSON.stringify(p.gemm));
  const oneRowGemms = (p.oneRowGemms ?? 'fp8-weights') as string;
  if (oneRowGemms !== 'fp8-weights' && oneRowGemms !== 'high') fail(`--policy ${file}`, '"oneRowGemms" to be "fp8-weights" or "high"', JSON.stringify(p.oneRowGemms));
  const oneRowMinBytes = p.oneRowMinBytes ?? ONE_ROW_MIN_BYTES;
  if (typeof oneRowMinBytes !== 'number' || !(oneRowMinBytes >= 0)) fail(`--policy ${file}`, '"oneRowMinBytes" to be a number of bytes >= 0', JSON.stringify(p.oneRowMinBytes));
  const ownGemmMinTiles = p.ownGemmMinTiles;
  if (ownGemmMinTiles !== undefined && (typeof ownGemmMinTiles !== 'number' || !Number.isInteger(ownGemmMinTiles) || ownGemmMinTiles < 1)) fail(`--policy ${file}`, '"ownGemmMinTiles" to be an integer >= 1', JSON.stringify(p.ownGemmMinTiles));
  return { format, keep: list('keep'), quantize: list('quantize'), structural: p.structural !== false, attention: attention as PrecisionPolicy['attention'], gemmScales: gemmScales as PrecisionPolicy['gemmScales'], accumulation, gemm, ...(ownGemmMinTiles === undefined ? {} : { ownGemmMinTiles }), oneRowGemms, oneRowMinBytes, source: file };
}

/** Attention this long (queries and keys) is compute-bound: where FP8 Q·Kᵀ pays. */
export const FP8_ATTENTION_MIN_TOKENS = 1024;

/**
 * Whether a FusedAttention computes Q·Kᵀ on 8 bits (e4m3 here, qk='fp8', Q and K with a scale per head
 * and 128-token block; softmax and P·V stay bf16; or on s8 codes where int8Attention says so): "fp8"
 * every one, "bf16" none, "auto" (default), "fp8-qk" and "fp8-pv" the long bidirectional ones of an
 * fp8 policy — no causal mask, at least FP8_ATTENTION_MIN_TOKENS queries and keys: the diffusion
 * transformers' joint attention — and not the text encoders' causal attention, short attention, a
 * VAE decoder's (a graph that convolves: bf16 by default, as its GEMMs), nor any under NVFP4 (b200
 * runs the portable bf16 kernel).
 * Measured on an H100 (bench/RESULTS.md, "FP8 attention by default"): Flux.2 step 270.2 -> 266.6 ms,
 * Qwen-Image pass 92.1 -> 90.0 ms; same-weights cosine against bf16 diffusers 0.998003 -> 0.998007
 * and 0.999225 -> 0.999256.
 */
export function fp8Attention(policy: PrecisionPolicy, a: { causal: boolean; queries: number; keys: number; convolves: boolean }): boolean {
  if (policy.attention !== 'auto' && policy.attention !== 'fp8-qk' && policy.attention !== 'fp8-pv') return policy.attention === 'fp8';
  return policy.format === 'fp8' && !a.causal && !a.convolves && a.queries >= FP8_ATTENTION_MIN_TOKENS && a.keys >= FP8_ATTENTION_MIN_TOKENS;
}

/**
 * Whether a FusedAttention computes Q·Kᵀ on s8 codes (qk='int8': Q with a scale per token, K per
 * head and 128-token block, amax/127; softmax and P·V bf16 unless int8PvAttention says otherwise):
 * "auto" (the default), "int8" and "int8-pv", on the attention where "fp8-qk" takes e4m3 Q·Kᵀ. The
 * tensor cores take s8 at e4m3's rate; the codes are 2-4x closer to full precision
 * (bench/results/attention-qk-recipes-2026-11-26.md; on the GPU: bench/results/attention-int8-2026-11-26.md).
 */
export function int8Attention(policy: PrecisionPolicy, a: { causal: boolean; queries: number; keys: number; convolves: boolean }): boolean {
  return (policy.attention === 'auto' || policy.attention === 'int8' || policy.attention === 'int8-pv') && fp8Attention({ ...policy, attention: 'auto' }, a);
}

/**
 * Whether an attention that computes Q·Kᵀ on s8 codes computes P·V on 8-bit integers too (pv='int8': P as u8 codes
 * against a running max held at integers, V as s8 codes per head and channel, exact s32 sums): "auto" (the default)
 * and "int8-pv" (which pins it), where int8Attention holds and the mask allows (none, or a key mask); never causal
 * attention. Within issue 6's 3e-2 of fp32 where FP8 P·V ("fp8-pv") is not: Flux.2's nodes 2.2e-2 / 2.4e-2 against
 * 5.1e-2 (bench/RESULTS.md "Session 29"); the same-weights cosine against bf16 diffusers 0.997955 / 0.999174 (Flux.2 /
 * Qwen-Image) against FP8 P·V's 0.997693 / 0.998452 (H200, "Session 42", call W1; an H100 the same, "Session 31").
 * The default since session 42, when its kernels had caught up (H200, "Session 42", call E2: Flux.2 step 239.4-240.3
 * ms against FP8 P·V's 239.7-241.1, Qwen-Image CFG step 136.3-136.8 against 135.95-136.15; attention 907-924 TFLOP/s
 * on Flux.2's nodes, calls A3-A5).
 */
export function int8PvAttention(policy: PrecisionPolicy, a: { causal: boolean; queries: number; keys: number; convolves: boolean; masked: boolean; maskShape?: readonly number[] }): boolean {
  return (policy.attention === 'auto' || policy.attention === 'int8-pv') && !a.causal && (!a.masked || (!!a.maskShape && keyMaskShape(a.maskShape))) && int8Attention(policy, a);
}

/** A mask shape that broadcasts over heads and queries (`[.., 1, 1, Skv]`): a key mask (text padding). */
export const keyMaskShape = (s: readonly number[]) => s.length >= 1 && s.length <= 4 && (s.length < 2 || s[s.length - 2] === 1) && (s.length < 3 || s[s.length - 3] === 1);

/**
 * Whether an attention that computes Q·Kᵀ in FP8 computes P·V in FP8 as well (pv='fp8': P and V in
 * e4m3, V with a scale per head and channel over the sequence): "fp8-pv", where fp8Attention holds and
 * there is no mask or a key mask (Qwen-Image's text padding: the keys it drops are left out of V's
 * scales and count as 0, compiler/ops/fused.ts maskDrops); never causal attention. The default from
 * session 18 to 41 ("auto" now takes the integer P·V, int8PvAttention); it became the default in
 * session 18, when the kernel took two P arrays (compiler/codegen/attention.ts pBuffers): H100 80GB
 * HBM3 at the 700 W cap, three rounds alternating (bench/RESULTS.md "Session 18: FP8 P·V by default",
 * calls B7 and B16): Flux.2 step 251.9-253.4 -> 245.3-247.0 ms (251.8-252.9 ->
 * 247.9-250.4 on another machine), Qwen-Image CFG step 151.4-151.7 -> 144.6-147.8 ms (150.6-151.5 ->
 * 144.7-147.2). The price: the same-weights cosine against bf16 diffusers 0.998005 -> 0.997638
 * (Flux.2) and 0.999241 -> 0.998551 (Qwen-Image), session 8; "fp8-qk" keeps P·V in bf16.
 */
export function fp8PvAttention(policy: PrecisionPolicy, a: { causal: boolean; queries: number; keys: number; convolves: boolean; masked: boolean; maskShape?: readonly number[] }): boolean {
  return policy.attention === 'fp8-pv' && !a.causal && (!a.masked || (!!a.maskShape && keyMaskShape(a.maskShape))) && fp8Attention(policy, a);
}

const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);

/** The stored weights behind a Linear's weight input (through load-time concatenation). */
export function weightNames(graph: Graph, node: Node, producer = producers(graph)): string[] {
  const walk = (x: string, depth: number): string[] => {
    if (graph.constants.has(x)) return [x];
    const p = producer.get(x);
    const n = p === undefined ? undefined : graph.nodes[p];
    if (!n || depth > 3) return [];
    if (n.op === 'Concat') return n.inputs.flatMap((y) => walk(y, depth + 1));
    return n.op === 'Reshape' || n.op === 'Transpose' ? walk(n.inputs[0], depth + 1) : [];
  };
  return walk(node.inputs[1], 0);
}

const VIEWS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Cast', 'Identity', 'Flatten']);

function readsGraphInput(graph: Graph, x: string, producer: Map<string, number>): boolean {
  for (let v = x, i = 0; i < 8; i++) {
    if (graph.inputs.includes(v)) return true;
    const p = producer.get(v);
    const n = p === undefined ? undefined : graph.nodes[p];
    if (!n || !VIEWS.has(n.op)) return false;
    v = n.inputs[0];
  }
  return false;
}

function writesGraphOutput(graph: Graph, y: string): boolean {
  const users = new Map<string, Node[]>();
  for (const n of graph.nodes) for (const x of n.inputs) if (x) users.set(x, [...(users.get(x) ?? []), n]);
  for (let v = y, i = 0; i < 8; i++) {
    if (graph.outputs.includes(v)) return true;
    const u = users.get(v) ?? [];
    if (u.length !== 1 || !VIEWS.has(u[0].op)) return false;
    v = u[0].outputs[0];
  }
  return false;
}

/** Bytes of a Linear's weight in its graph type. */
function weightBytes(graph: Graph, node: Node): number {
  const t = graph.types.get(node.inputs[1]);
  return t?.kind === 'tensor' ? bytesFor(t.dtype, (t.shape as number[]).reduce((a, b) => a * b, 1)) : 0;
}

/** A one-row GEMM that becomes a weight-only FP8 GEMV (header, `oneRowGemms`): fp8 policy, large weight, K a multiple of 16. */
function weightOnlyFp8(policy: PrecisionPolicy, graph: Graph, node: Node, shape: number[]): boolean {
  if (policy.format !== 'fp8' || policy.oneRowGemms !== 'fp8-weights' || shape.length !== 2) return false;
  const k = shape[node.attrs.transB === 1 ? 1 : 0];
  return k % 16 === 0 && weightBytes(graph, node) >= policy.oneRowMinBytes;
}

/** Decides every Linear of the graph; throws when a policy pattern matches nothing. */
export function decideGemms(graph: Graph, policy: PrecisionPolicy, checkPatterns = true): Map<string, GemmDecision> {
  const producer = producers(graph);
  const decisions = new Map<string, GemmDecision>();
  const used = new Set<string>();
  const match = (list: string[], names: string[]) => list.find((pat) => names.length > 0 && names.every((n) => glob(pat).test(n)));
  const allWeights: string[] = [];
  const convolves = graph.nodes.some((n) => n.op === 'Conv' || n.op === 'FusedConv');
  for (const node of graph.nodes) {
    if (node.domain !== 'dc' || node.op !== 'Linear') continue;
    const weights = weightNames(graph, node, producer);
    allWeights.push(...weights);
    const t = graph.types.get(node.inputs[0]);
    const xShape = (t?.kind === 'tensor' ? t.shape : []) as number[];
    const wt = graph.types.get(node.inputs[1]);
    const shape = (wt?.kind === 'tensor' ? wt.shape : []) as number[];
    const rows = xShape.slice(0, -1).reduce((a, b) => a * b, 1) / (graph.batch ?? 1); // per sample
    const keep = match(policy.keep, weights), force = match(policy.quantize, weights);
    let quantized: boolean, reason: string, weightOnly = false;
    if (keep) { quantized = false; reason = `policy keeps '${keep}'`; used.add(keep); }
    else if (force) { quantized = true; reason = `policy quantizes '${force}'`; used.add(force); }
    else if (!policy.structural) { quantized = true; reason = 'structural defaults off'; }
    else if (convolves) { quantized = false; reason = 'VAE decoder (the graph convolves): bf16 by default'; }
    else if (rows === 1 && weightOnlyFp8(policy, graph, node, shape)) { quantized = true; weightOnly = true; reason = `one row per sample with a large weight (${(weightBytes(graph, node) / 1e6).toFixed(0)} MB): FP8 weights only, activation kept`; }
    else if (rows === 1) { quantized = false; reason = 'one row per sample (timestep/guidance embedding or modulation): negligible time, sensitive'; }
    else if (readsGraphInput(graph, node.inputs[0], producer)) { quantized = false; reason = 'reads a graph input (input embedder)'; }
    else if (writesGraphOutput(graph, node.outputs[0])) { quantized = false; reason = 'writes the graph output (final projection)'; }
    else if (policy.format === 'nvfp4' && shape[node.attrs.transB === 1 ? 1 : 0] % 16) { quantized = false; reason = 'K is not a multiple of 16 (NVFP4 blocks)'; }
    else { quantized = true; reason = 'per-token GEMM inside the network'; }
    decisions.set(node.outputs[0], { node: node.outputs[0], weights, shape, transB: node.attrs.transB === 1, quantized, ...(weightOnly ? { weightOnly: true as const } : {}), reason });
  }
  for (const pat of checkPatterns ? [...policy.keep, ...policy.quantize] : []) {
    if (!used.has(pat)) {
      fail(`--policy ${policy.source}`, `pattern '${pat}' to match the weights of at least one GEMM`, `no match among ${allWeights.length} GEMM weights (e.g. ${allWeights.slice(0, 3).join(', ') || 'none'})`);
    }
  }
  return decisions;
}
