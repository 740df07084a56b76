/**
 * GEMMs through cuBLASLt (koffi bindings to libcublasLt, CUDA 13 on the GPU host).
 *
 * Every GEMM of an artifact computes, row-major, Y[M, N] = X[M, K] · W^T (+ bias[N]) with W stored
 * [N, K] ('nk': quantized weights always, raw weights when transB) or [K, N] ('kn'). cuBLASLt is
 * column-major, so the same bytes are read as Y^T (N x M) = op(W) · X^T: A = W (transposed when
 * 'nk'), B = X (K x M), D = Y (N x M, ld N). cuBLAS's m, n, k are our N, M, K.
 *
 *   fp8   A, B e4m3 ("TN", the only FP8 layout Hopper runs); outer-vector fp32 scales
 *         (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F): A's per output channel (our ws[N]), B's per
 *         token (our xs[M]) — exactly compiler/ops/quant.ts QLinear; the bias epilogue takes a
 *         bf16 bias whatever D is (the caller converts an fp32 bias once at load).
 *         `unscaled` (compiler/codegen/dequant.ts): unit scales, no bias epilogue, D = Σ xq·wq; the
 *         kernels reading D apply xs, ws and the bias. cuBLASLt's plain FP8 path, measured faster
 *         than its outer-vector mode (bench/RESULTS.md, "Deferred dequantization").
 *   bf16  A, B bf16 (QLinear of format bf16: its scales are 1 and unused).
 *   high  A, B and D in the graph's float type (Linear kept in high precision).
 *   act   (a launch with `act`: dc.ActMatMul, lower-attention's GEMM attention) both operands are
 *         activations in the arena: W is an activation [N, K] (transB) or [K, N], its type from the
 *         graph like X's; D may be wider (bf16 operands, fp32 scores); alpha from the plan; X and W
 *         may be views with a row stride (lda, ldb, in elements) wider than their rows. The
 *         heuristic is told the operands' real pointer alignment (a view may start off 256 bytes).
 * Accumulation and the alpha/beta scale type are fp32 in every case; an fp8 launch with `fastAccum`
 * skips cuBLASLt's periodic promotion of the tensor cores' partial sums (the policy's default).
 *
 * specFor() is pure (tested on the CPU); Gemm objects own a matmul descriptor with the operand
 * pointers baked in, and an algorithm from the heuristic, cached per shape and types at load.
 *
 * Tuning (tune(), at load where $DC_GEMM_TUNING asks: tuning-cache.ts says why it is off by default): the heuristic's first answer is often not
 * the fastest (an exhaustive search over every configuration cuBLASLt accepts, bench/gpu/
 * gemm_fp8_configs.cu, found 3-20% on 9 of the 18 FP8 shapes of both transformers on the H100), so
 * each shape's candidates are the heuristic's answers (up to TUNE_HEURISTICS) and, for short GEMMs
 * (TUNE_CONFIGS_BELOW_MS), the configurations of its first answer's algorithm: every tile it supports
 * x the cluster shapes auto, 1x1, 2x1, 1x2 and 2x2, at that answer's stages, each accepted by
 * cublasLtMatmulAlgoCheck within the workspace. Each candidate is timed once on the shape's first
 * GEMM; the heuristic's first answer and the three fastest again over up to TUNE_INSTANCES GEMMs of
 * the shape (distinct weights, read from DRAM as in a run), and the fastest of those kept (times
 * within TUNE_TOLERANCE of it count as ties, which the heuristic's order breaks); every GEMM of the shape shares that one algorithm buffer, so the choice is
 * made before the CUDA graph is captured. A shape whose algorithm an earlier load on this device and
 * library chose (`known`, tuning-cache.ts) keeps it untimed if cublasLtMatmulAlgoCheck still accepts it.
 */
import { fail } from '../../compiler/errors.ts';
import type { DType } from '../../compiler/ir/dtype.ts';
import type { WeightEntry } from '../../compiler/weights-file.ts';
import { type Launch, parseType } from './artifact.ts';
import { type DevicePtr, type Handle, loadLibrary } from './cuda.ts';

/** Values from CUDA 13's library_types.h, cublas_api.h and cublasLt.h (checked on the GPU host by `run-cli --check-headers`). */
export const CONSTANTS = {
  CUDA_R_32F: 0, CUDA_R_16F: 2, CUDA_R_16BF: 14, CUDA_R_8F_E4M3: 28,
  CUBLAS_COMPUTE_32F: 68, CUBLAS_OP_N: 0, CUBLAS_OP_T: 1,
  CUBLASLT_MATMUL_DESC_TRANSA: 3, CUBLASLT_MATMUL_DESC_TRANSB: 4, CUBLASLT_MATMUL_DESC_EPILOGUE: 7,
  CUBLASLT_MATMUL_DESC_BIAS_POINTER: 8, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER: 17, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER: 18,
  CUBLASLT_MATMUL_DESC_FAST_ACCUM: 25, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: 26, CUBLASLT_MATMUL_DESC_A_SCALE_MODE: 31, CUBLASLT_MATMUL_DESC_B_SCALE_MODE: 32,
  CUBLASLT_EPILOGUE_DEFAULT: 1, CUBLASLT_EPILOGUE_BIAS: 4, CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F: 3,
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES: 1, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: 5, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: 7, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: 8,
} as const;
const C = CONSTANTS;
/** sizeof(cublasLtMatmulHeuristicResult_t): algo (8 x uint64) + size_t workspaceSize + status + float waves + int[4]. */
const HEURISTIC_BYTES = 96;
export const WORKSPACE_BYTES = 32 << 20;
/** How many heuristic answers per GEMM shape tune() times. */
export const TUNE_HEURISTICS = 16;
/** The most GEMMs of one shape a candidate is timed over. */
const TUNE_INSTANCES = 3;
/**
 * Configurations are timed only for shapes whose heuristic first answer runs under this (ms): on the
 * H100 they won only there (Qwen-Image's 256-token GEMMs, 3-11%), while the long GEMMs' gains came
 * from the heuristic's other answers, and timing ~530 configurations of a 2 ms GEMM cost 27 s of
 * Flux.2's load for 0.04 ms a step (H100; bench/RESULTS.md, "Session 6").
 */
const TUNE_CONFIGS_BELOW_MS = 0.1;
/** cublasLtClusterShape_t: auto, 1x1x1, 2x1x1, 1x2x1, 2x2x1. */
const TUNE_CLUSTERS = [0, 2, 3, 5, 6];
/** cublasLtMatmulAlgoConfigAttributes_t and cublasLtMatmulAlgoCapAttributes_t members tune() uses. */
const CONFIG_ID = 0, CONFIG_TILE_ID = 1, CONFIG_STAGES_ID = 6, CONFIG_CLUSTER_SHAPE_ID = 8, CAP_TILE_IDS = 6;

const CUDA_TYPE: Partial<Record<DType, number>> = { float32: C.CUDA_R_32F, float16: C.CUDA_R_16F, bfloat16: C.CUDA_R_16BF, float8e4m3fn: C.CUDA_R_8F_E4M3 };

/** What one GEMM launch computes, with its operands' value names (pure data, from the manifest). */
export interface GemmSpec {
  node: string;
  precision: 'fp8' | 'bf16' | 'high';
  m: number; n: number; k: number;
  x: string; w: string; y: string;
  /** fp8: the per-token (xs) and per-channel (ws) scale values. */
  xs?: string; ws?: string;
  /** fp8 accumulating without the periodic fp32 promotion (CUBLASLT_MATMUL_DESC_FAST_ACCUM). */
  fastAccum?: boolean;
  /** fp8 with unit scales and no bias epilogue: the output's readers apply xs, ws and the bias (compiler/codegen/dequant.ts). */
  unscaled?: boolean;
  bias?: string;
  xType: DType; wType: DType; yType: DType;
  /** The bias as the GEMM reads it (fp8 reads bf16); the stored bias may need converting. */
  biasType?: DType; biasStoredType?: DType;
  layout: 'nk' | 'kn';
  /** Both operands activations (dc.ActMatMul): alpha and the row strides (elements) of X and W. */
  act?: { alpha: number; lda: number; ldb: number };
}

/** Maps a gemm launch to a GemmSpec, checking operand types and shapes against the manifest. */
export function specFor(l: Extract<Launch, { kind: 'gemm' }>, values: Record<string, string>, weight: (v: string) => WeightEntry | undefined): GemmSpec {
  const where = `GEMM '${l.node}'`;
  if (l.precision === 'nvfp4') fail(where, 'a GEMM precision this runtime runs (fp8, bf16, high)', 'nvfp4 (the B200 path is not implemented yet)');
  const type = (v: string) => parseType(values[v], `${where} operand '${v}'`);
  const a = l.args.map((x) => x.value);
  if (l.act) return actSpec(l, l.act, a, type);
  const quantized = l.precision !== 'high';
  const expectArgs = (quantized ? 5 : 3) + (l.bias ? 1 : 0);
  if (a.length !== expectArgs) fail(where, `${expectArgs} arguments`, `${a.length}`);
  const [x, w] = quantized ? [a[0], a[2]] : [a[0], a[1]];
  const bias = l.bias ? a[a.length - 2] : undefined;
  const y = a[a.length - 1];
  const entry = weight(w);
  if (!entry) fail(where, `weight '${w}' in the weight index`, 'none');
  const layout: 'nk' | 'kn' = quantized ? 'nk' : l.transB ? 'nk' : 'kn';
  if (quantized && (entry.kind !== l.precision || entry.layout !== 'nk')) fail(where, `a ${l.precision} weight stored [N, K]`, `${entry.kind} (${entry.layout ?? 'no layout'})`);
  const xt = type(x), yt = type(y);
  const wShape = quantized ? entry.shape : type(w).shape;
  const [wn, wk] = layout === 'nk' ? wShape : [wShape[1], wShape[0]];
  const m = xt.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  if (m !== l.m || xt.shape.at(-1) !== l.k || wn !== l.n || wk !== l.k || yt.shape.at(-1) !== l.n) {
    fail(where, `X [${l.m}, ${l.k}], W ${layout} for N=${l.n}, Y [.., ${l.n}]`, `X [${xt.shape}], W [${wShape}], Y [${yt.shape}]`);
  }
  const wType: DType = l.precision === 'fp8' ? 'float8e4m3fn' : l.precision === 'bf16' ? 'bfloat16' : type(w).dtype;
  for (const [name, t] of [['X', xt.dtype], ['W', wType], ['Y', yt.dtype]] as const) {
    if (CUDA_TYPE[t] === undefined) fail(where, `${name} of a type cuBLASLt reads here (float32, bfloat16, float16, float8e4m3fn)`, t);
  }
  const spec: GemmSpec = { node: l.node, precision: l.precision, m: l.m, n: l.n, k: l.k, x, w, y, xType: xt.dtype, wType, yType: yt.dtype, layout };
  if (l.precision === 'fp8') [spec.xs, spec.ws] = [a[1], a[3]];
  if (l.fastAccum) {
    if (l.precision !== 'fp8') fail(where, 'fast accumulation on a GEMM of precision fp8', l.precision);
    spec.fastAccum = true;
  }
  if (l.unscaled) {
    if (l.precision !== 'fp8') fail(where, 'an unscaled GEMM of precision fp8', l.precision);
    spec.unscaled = true;
  } else if (bias) {
    spec.bias = bias;
    spec.biasStoredType = type(bias).dtype;
    spec.biasType = l.precision === 'fp8' ? 'bfloat16' : yt.dtype;
  }
  return spec;
}

/** A GEMM of two activations: W's layout from transB, every type from the graph, shapes as element counts. */
function actSpec(l: Extract<Launch, { kind: 'gemm' }>, act: NonNullable<GemmSpec['act']>, args: string[], type: (v: string) => ReturnType<typeof parseType>): GemmSpec {
  const where = `GEMM '${l.node}'`;
  if (l.precision !== 'high' || l.bias || args.length !== 3) fail(where, 'an activation GEMM of precision high, no bias, 3 arguments', `${l.precision}, bias ${l.bias}, ${args.length} arguments`);
  const [x, w, y] = args;
  const [xt, wt, yt] = args.map(type);
  if (l.args[1].where === 'weight') fail(where, `an activation as B ('${w}')`, 'a weight');
  const count = (t: { shape: number[] }) => t.shape.reduce((p, d) => p * d, 1);
  const layout: 'nk' | 'kn' = l.transB ? 'nk' : 'kn';
  const { m, n, k } = l;
  const wCols = layout === 'nk' ? k : n;
  if (count(xt) !== m * k || xt.shape.at(-1) !== k || count(wt) !== n * k || wt.shape.at(-1) !== wCols || count(yt) !== m * n) {
    fail(where, `X [${m}, ${k}], W ${layout} for N=${n}, Y of ${m * n} values`, `X [${xt.shape}], W [${wt.shape}], Y [${yt.shape}]`);
  }
  if (act.lda < k || act.ldb < wCols) fail(where, `row strides of at least ${k} (X) and ${wCols} (W)`, `${act.lda} and ${act.ldb}`);
  if (xt.dtype !== wt.dtype) fail(where, 'X and W of one type', `${xt.dtype} and ${wt.dtype}`);
  for (const [name, t] of [['X', xt.dtype], ['W', wt.dtype], ['Y', yt.dtype]] as const) {
    if (CUDA_TYPE[t] === undefined || t === 'float8e4m3fn') fail(where, `${name} of a type cuBLASLt reads here (float32, bfloat16, float16)`, t);
  }
  return { node: l.node, precision: 'high', m, n, k, x, w, y, xType: xt.dtype, wType: wt.dtype, yType: yt.dtype, layout, act: { ...act } };
}

/** The largest power of two (at most 256) that divides a device address: the alignment the heuristic is told. */
export const alignmentOf = (ptr: DevicePtr): number => {
  let a = 1;
  while (a < 256 && Number(BigInt(ptr) % BigInt(a * 2)) === 0) a *= 2;
  return a;
};

const LT = {
  create: 'int cublasLtCreate(_Out_ void **handle)',
  destroy: 'int cublasLtDestroy(void *handle)',
  version: 'size_t cublasLtGetVersion()',
  statusName: 'const char *cublasLtGetStatusName(int status)',
  statusString: 'const char *cublasLtGetStatusString(int status)',
  descCreate: 'int cublasLtMatmulDescCreate(_Out_ void **desc, int computeType, int scaleType)',
  descDestroy: 'int cublasLtMatmulDescDestroy(void *desc)',
  descSet: 'int cublasLtMatmulDescSetAttribute(void *desc, int attr, const void *buf, size_t size)',
  layoutCreate: 'int cublasLtMatrixLayoutCreate(_Out_ void **layout, int type, uint64_t rows, uint64_t cols, int64_t ld)',
  layoutDestroy: 'int cublasLtMatrixLayoutDestroy(void *layout)',
  prefCreate: 'int cublasLtMatmulPreferenceCreate(_Out_ void **pref)',
  prefDestroy: 'int cublasLtMatmulPreferenceDestroy(void *pref)',
  prefSet: 'int cublasLtMatmulPreferenceSetAttribute(void *pref, int attr, const void *buf, size_t size)',
  heuristic: 'int cublasLtMatmulAlgoGetHeuristic(void *handle, void *desc, void *a, void *b, void *c, void *d, void *pref, int requested, void *results, _Out_ int *returned)',
  matmul: 'int cublasLtMatmul(void *handle, void *desc, const void *alpha, uint64_t a, void *adesc, uint64_t b, void *bdesc, const void *beta, uint64_t c, void *cdesc, uint64_t d, void *ddesc, const void *algo, uint64_t workspace, size_t workspaceSize, void *stream)',
  algoInit: 'int cublasLtMatmulAlgoInit(void *handle, int computeType, int scaleType, int aType, int bType, int cType, int dType, int algoId, void *algo)',
  algoCheck: 'int cublasLtMatmulAlgoCheck(void *handle, void *desc, void *a, void *b, void *c, void *d, const void *algo, void *result)',
  capGet: 'int cublasLtMatmulAlgoCapGetAttribute(const void *algo, int attr, void *buf, size_t size, _Out_ size_t *written)',
  configGet: 'int cublasLtMatmulAlgoConfigGetAttribute(const void *algo, int attr, void *buf, size_t size, _Out_ size_t *written)',
  configSet: 'int cublasLtMatmulAlgoConfigSetAttribute(void *algo, int attr, const void *buf, size_t size)',
} as const;

type Fn = (...args: unknown[]) => unknown;
/** Sonames tried in order: CUDA 13 first, then 12, then the toolkit folder. */
const SONAMES = ['libcublasLt.so.13', 'libcublasLt.so.12', '/usr/local/cuda/lib64/libcublasLt.so.13', '/usr/local/cuda/lib64/libcublasLt.so.12', 'libcublasLt.so'];

export class CublasLt {
  private readonly fn: Record<keyof typeof LT, Fn>;
  readonly handle: Handle;
  readonly version: number;
  readonly library: string;
  private readonly pref: Handle;
  /** Preferences of activation GEMMs, by the alignments of A, B and D. */
  private readonly alignedPrefs = new Map<string, Handle>();
  private readonly algos = new Map<string, Buffer>();
  /** Per shape key: what tune() times. */
  private readonly candidates = new Map<string, ShapeCandidates>();
  private readonly layouts = new Map<string, Handle>();
  private readonly alpha = Float32Array.of(1);
  private readonly beta = Float32Array.of(0);

  constructor() {
    const loaded = loadLibrary(SONAMES);
    if ('error' in loaded) fail('libcublasLt', `cuBLASLt (one of ${SONAMES.join(', ')})`, `none loads: ${loaded.error}`);
    this.library = loaded.name;
    this.fn = Object.fromEntries(Object.entries(LT).map(([k, p]) => [k, loaded.lib.func(p) as Fn])) as Record<keyof typeof LT, Fn>;
    this.version = Number(this.fn.version());
    this.handle = this.out('create');
    this.pref = this.out('prefCreate');
    this.call('prefSet', this.pref, C.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, BigUint64Array.of(BigInt(WORKSPACE_BYTES)), 8);
  }

  private call(name: keyof typeof LT, ...args: unknown[]): void {
    const rc = this.fn[name](...args) as number;
    if (rc !== 0) fail(LT[name].split('(')[0].split(' ').at(-1)!.replace('*', ''), 'CUBLAS_STATUS_SUCCESS', `${this.fn.statusName(rc)} (${this.fn.statusString(rc)})`);
  }

  private out(name: keyof typeof LT, ...args: unknown[]): Handle {
    const box: (Handle | null)[] = [null];
    this.call(name, box, ...args);
    return box[0]!;
  }

  private layout(type: DType, rows: number, cols: number, ld: number): Handle {
    const key = `${type} ${rows} ${cols} ${ld}`;
    let l = this.layouts.get(key);
    if (!l) this.layouts.set(key, (l = this.out('layoutCreate', CUDA_TYPE[type], rows, cols, ld)));
    return l;
  }

  private setAttr(desc: Handle, attr: number, value: number | bigint, bytes: 1 | 4 | 8): void {
    const buf = bytes === 1 ? Int8Array.of(Number(value)) : bytes === 4 ? Int32Array.of(Number(value)) : BigUint64Array.of(BigInt(value));
    this.call('descSet', desc, attr, buf, bytes);
  }

  /** A GEMM with its operand pointers bound; `enqueue(stream)` runs it. */
  gemm(spec: GemmSpec, ptr: { x: DevicePtr; w: DevicePtr; y: DevicePtr; xs?: DevicePtr; ws?: DevicePtr; bias?: DevicePtr }, workspace: DevicePtr): Gemm {
    const desc = this.out('descCreate', C.CUBLAS_COMPUTE_32F, C.CUDA_R_32F);
    this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_TRANSA, spec.layout === 'nk' ? C.CUBLAS_OP_T : C.CUBLAS_OP_N, 4);
    this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_TRANSB, C.CUBLAS_OP_N, 4);
    if (spec.precision === 'fp8' && !spec.unscaled) {
      this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_A_SCALE_MODE, C.CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, 4);
      this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_B_SCALE_MODE, C.CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F, 4);
      this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, ptr.ws!, 8);
      this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, ptr.xs!, 8);
    }
    if (spec.fastAccum) this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_FAST_ACCUM, 1, 1); // int8_t attribute
    if (spec.bias) {
      this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_EPILOGUE, C.CUBLASLT_EPILOGUE_BIAS, 4);
      this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_BIAS_POINTER, ptr.bias!, 8);
      this.setAttr(desc, C.CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_TYPE[spec.biasType!]!, 4);
    }
    const { m, n, k } = spec;
    const lda = spec.act?.lda ?? k, ldb = spec.act?.ldb ?? (spec.layout === 'nk' ? k : n);
    const a = spec.layout === 'nk' ? this.layout(spec.wType, k, n, ldb) : this.layout(spec.wType, n, k, ldb);
    const b = this.layout(spec.xType, k, m, lda);
    const d = this.layout(spec.yType, n, m, n);
    // Activation GEMMs: the heuristic is told the operands' real alignment (cuBLASLt's A is our W).
    const aligned = spec.act ? [ptr.w, ptr.x, ptr.y].map(alignmentOf) : undefined;
    const key = `${spec.precision}${spec.unscaled ? ' unscaled' : ''}${spec.fastAccum ? ' fast' : ''} ${m} ${n} ${k} ${spec.layout} ${spec.xType} ${spec.wType} ${spec.yType} ${spec.biasType ?? '-'}${spec.act ? ` ld ${lda} ${ldb} align ${aligned}` : ''}`;
    let algo = this.algos.get(key);
    if (!algo) {
      const results = Buffer.alloc(HEURISTIC_BYTES * TUNE_HEURISTICS);
      const returned = [0];
      const rc = this.fn.heuristic(this.handle, desc, a, b, d, d, aligned ? this.alignedPref(aligned) : this.pref, TUNE_HEURISTICS, results, returned) as number;
      if (rc !== 0 || returned[0] < 1) {
        const why = rc !== 0 ? `${this.fn.statusName(rc)} (${this.fn.statusString(rc)})` : 'no algorithm';
        fail(`GEMM '${spec.node}' (${key})`, 'a cuBLASLt algorithm for this GEMM', why);
      }
      // Answers whose state (int at byte 72 of cublasLtMatmulHeuristicResult_t) is not CUBLAS_STATUS_SUCCESS are left out.
      const answers = Array.from({ length: returned[0] }, (_, i) => i * HEURISTIC_BYTES)
        .filter((at, i) => i === 0 || results.readInt32LE(at + 72) === 0)
        .map((at) => Buffer.from(results.subarray(at, at + 64)));
      algo = Buffer.from(answers[0]);
      this.algos.set(key, algo);
      const types = [CUDA_TYPE[spec.wType]!, CUDA_TYPE[spec.xType]!, CUDA_TYPE[spec.yType]!, CUDA_TYPE[spec.yType]!];
      this.candidates.set(key, { algos: answers, check: { desc, a, b, d, types }, gemms: [], count: 0 });
    }
    const alpha = spec.act ? Float32Array.of(spec.act.alpha) : this.alpha;
    const args = [this.handle, desc, alpha, ptr.w, a, ptr.x, b, this.beta, ptr.y, d, ptr.y, d, algo, workspace, WORKSPACE_BYTES];
    const gemm: Gemm = {
      spec,
      enqueue: (stream: Handle) => this.call('matmul', ...args, stream),
      destroy: () => this.call('descDestroy', desc),
    };
    const c = this.candidates.get(key)!;
    if (c.gemms.length < TUNE_INSTANCES) c.gemms.push(gemm);
    c.count++;
    return gemm;
  }

  /** A 64-byte algorithm's config attribute (little-endian, its own size), or undefined where the library has none. */
  private configOf(algo: Buffer, attr: number): number | undefined {
    const size = this.configSize(algo, attr);
    if (!size) return undefined;
    const buf = Buffer.alloc(8), written = [0];
    if ((this.fn.configGet(algo, attr, buf, size, written) as number) !== 0) return undefined;
    return Number(buf.readBigUInt64LE(0));
  }

  /** The byte size of a config attribute (the library takes exactly that size), 0 where it has none. */
  private configSize(algo: Buffer, attr: number): number {
    const written = [0];
    this.fn.configGet(algo, attr, null, 0, written);
    return written[0] > 0 && written[0] <= 8 ? written[0] : 0;
  }

  /** Sets a config attribute at the size the library gives it; false where it refuses. */
  private setConfig(algo: Buffer, attr: number, value: number): boolean {
    const size = this.configSize(algo, attr);
    if (!size) return false;
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(BigInt(value));
    return (this.fn.configSet(algo, attr, buf, size) as number) === 0;
  }

  /** Does cublasLtMatmulAlgoCheck accept `algo` for this shape within the workspace? */
  private accepts(c: ShapeCandidates, algo: Buffer): boolean {
    const result = Buffer.alloc(HEURISTIC_BYTES);
    const { desc, a, b, d } = c.check;
    return (this.fn.algoCheck(this.handle, desc, a, b, d, d, algo, result) as number) === 0 && Number(result.readBigUInt64LE(64)) <= WORKSPACE_BYTES;
  }

  /**
   * The configurations of the heuristic's first algorithm (every tile x TUNE_CLUSTERS at its stages)
   * that cublasLtMatmulAlgoCheck accepts for this shape within the workspace, minus the answers already listed.
   */
  private configurations(c: ShapeCandidates): Buffer[] {
    const first = c.algos[0];
    const id = this.configOf(first, CONFIG_ID), stages = this.configOf(first, CONFIG_STAGES_ID);
    if (id === undefined) return [];
    const base = Buffer.alloc(64);
    const [aType, bType, cType, dType] = c.check.types;
    if ((this.fn.algoInit(this.handle, C.CUBLAS_COMPUTE_32F, C.CUDA_R_32F, aType, bType, cType, dType, id, base) as number) !== 0) return [];
    const size = [0];
    this.fn.capGet(base, CAP_TILE_IDS, null, 0, size); // the list's byte size
    const tileBuf = Buffer.alloc(size[0]);
    if (!size[0] || (this.fn.capGet(base, CAP_TILE_IDS, tileBuf, size[0], size) as number) !== 0) return [];
    const tiles = Array.from({ length: tileBuf.length / 4 }, (_, i) => tileBuf.readUInt32LE(4 * i));
    const seen = new Set(c.algos.map((x) => x.toString('hex')));
    const out: Buffer[] = [];
    for (const tile of tiles) {
      for (const cluster of TUNE_CLUSTERS) {
        const algo = Buffer.from(base);
        if (!this.setConfig(algo, CONFIG_TILE_ID, tile)) continue;
        if (stages !== undefined) this.setConfig(algo, CONFIG_STAGES_ID, stages);
        this.setConfig(algo, CONFIG_CLUSTER_SHAPE_ID, cluster);
        if (!this.accepts(c, algo)) continue;
        const hex = algo.toString('hex');
        if (seen.has(hex)) continue;
        seen.add(hex);
        out.push(algo);
      }
    }
    return out;
  }

  /**
   * Chooses each shape's algorithm by timing (header): `timeMs(run, reps)` returns the device
   * milliseconds of one run() (after a warm-up, the mean of `reps`); a run enqueues GEMMs of the
   * shape once each. A candidate the library refuses at run time counts as never finishing. Returns,
   * per shape, the heuristic's first answer against the one kept (ms per GEMM).
   */
  tune(timeMs: (run: (stream: Handle) => void, reps: number) => number, known: ReadonlyMap<string, string> = new Map()): TuneResult[] {
    const out: TuneResult[] = [];
    for (const [key, c] of this.candidates) {
      if (!c.gemms.length) continue;
      const algo = this.algos.get(key)!;
      // Chosen on this device and library before (tuning-cache.ts), and still accepted for this shape: kept, not timed.
      const saved = known.get(key);
      if (saved && this.accepts(c, Buffer.from(saved, 'hex'))) {
        Buffer.from(saved, 'hex').copy(algo);
        out.push({ key, gemms: c.count, candidates: 0, heuristics: c.algos.length, firstMs: NaN, bestMs: NaN, chosen: -1, algo: saved, saved: true });
        continue;
      }
      const candidates = [...c.algos];
      // A candidate cuBLASLt refuses at launch (a cuBLAS status) never wins; a driver error (events,
      // a faulted context) is not the candidate's and propagates.
      const time = (i: number, gemms: Gemm[], reps: number) => {
        candidates[i].copy(algo);
        let refused = false;
        const ms = timeMs((stream) => {
          for (const g of gemms) {
            if (refused) return;
            try { g.enqueue(stream); } catch { refused = true; }
          }
        }, reps) / gemms.length;
        return refused ? Infinity : ms;
      };
      // Screen: each candidate once on the shape's first GEMM. Then the heuristic's first answer and
      // the three fastest over every timing GEMM (distinct weights), twice; the least timing counts.
      const screen = candidates.map((_, i) => time(i, c.gemms.slice(0, 1), 1));
      // Short GEMMs also try every configuration (cheap to time there, and where they won).
      if (screen[0] < TUNE_CONFIGS_BELOW_MS) {
        for (const algo of this.configurations(c)) screen.push(time(candidates.push(algo) - 1, c.gemms.slice(0, 1), 1));
      }
      const finalists = [0, ...screen.map((t, i) => [t, i]).filter(([t, i]) => i !== 0 && Number.isFinite(t)).sort((x, y) => x[0] - y[0]).slice(0, 3).map(([, i]) => i)];
      const final = candidates.map(() => Infinity);
      for (let round = 0; round < 2; round++) for (const i of finalists) final[i] = Math.min(final[i], time(i, c.gemms, 2));
      const best = fastest(final, `GEMM shape ${key}`);
      candidates[best].copy(algo);
      out.push({ key, gemms: c.count, candidates: candidates.length, heuristics: c.algos.length, firstMs: final[0], bestMs: final[best], chosen: best, algo: candidates[best].toString('hex') });
    }
    return out;
  }

  /** A preference with the workspace limit and these minimum alignments of A, B and C/D (bytes). */
  private alignedPref([a, b, d]: number[]): Handle {
    const key = `${a} ${b} ${d}`;
    let p = this.alignedPrefs.get(key);
    if (p) return p;
    p = this.out('prefCreate');
    this.call('prefSet', p, C.CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, BigUint64Array.of(BigInt(WORKSPACE_BYTES)), 8);
    for (const [attr, v] of [[C.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, a], [C.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, b], [C.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, d], [C.CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, d]]) {
      this.call('prefSet', p, attr, Uint32Array.of(v), 4);
    }
    this.alignedPrefs.set(key, p);
    return p;
  }

  /** Distinct GEMM shapes and types planned (heuristic results cached). */
  get planned(): number {
    return this.algos.size;
  }

  close(): void {
    for (const l of this.layouts.values()) this.call('layoutDestroy', l);
    this.layouts.clear();
    for (const p of this.alignedPrefs.values()) this.call('prefDestroy', p);
    this.alignedPrefs.clear();
    this.call('prefDestroy', this.pref);
    this.call('destroy', this.handle);
  }
}

/**
 * Timings within this fraction of the fastest count as equal. Algorithms round differently (their tiles
 * and K splits sum in other orders), so a choice made by timing noise would make a seed's image depend
 * on the machine and the load: within it, the heuristic's order decides. Seen on H200s (bench/RESULTS.md
 * "Session 32: GEMM tuning"): Qwen-Image's transformer kept 2, 3 or 4 other algorithms by load for
 * 0.00-0.01 ms a run, and its PNG bytes differed between loads of the same artifact.
 */
export const TUNE_TOLERANCE = 0.03;

/**
 * The index of the candidate kept: the first, in the heuristic's order, whose time is within `tolerance`
 * of the fastest; Infinity marks one that did not run.
 */
export function fastest(times: readonly number[], where: string, tolerance = TUNE_TOLERANCE): number {
  const min = Math.min(...times.filter(Number.isFinite));
  if (!Number.isFinite(min)) fail(where, 'an algorithm that runs', `none of ${times.length} did`);
  return times.findIndex((t) => Number.isFinite(t) && t <= min * (1 + tolerance));
}

/**
 * One GEMM shape's tuning (`gemms` launches share it): the heuristic's first algorithm against the one
 * kept, index `chosen` among `candidates` (the first `heuristics` of them the heuristic's answers), and
 * the kept algorithm (64 bytes, hex). `saved`: kept from an earlier load (tuning-cache.ts), not timed
 * (no candidates, times NaN, chosen -1).
 */
export interface TuneResult { key: string; gemms: number; candidates: number; heuristics: number; firstMs: number; bestMs: number; chosen: number; algo: string; saved?: true }

/**
 * One GEMM shape's tuning material: the heuristic's answers (64-byte algorithms, best first by its
 * estimate), what cublasLtMatmulAlgoCheck needs (descriptor, layouts, A/B/C/D types), up to
 * TUNE_INSTANCES of its GEMMs to time, and how many GEMMs share it.
 */
interface ShapeCandidates { algos: Buffer[]; check: { desc: Handle; a: Handle; b: Handle; d: Handle; types: number[] }; gemms: Gemm[]; count: number }

export interface Gemm {
  spec: GemmSpec;
  enqueue(stream: Handle): void;
  destroy(): void;
}

/** Parses `#define`/enum lines `NAME = VALUE` of CUDA's headers and lists mismatches with CONSTANTS. */
export function checkConstants(headerText: string): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(CONSTANTS)) {
    const m = new RegExp(`\\b${name}\\s*=\\s*(0x[0-9a-fA-F]+|\\d+)`).exec(headerText);
    if (!m) problems.push(`${name}: not found`);
    else if (Number(m[1]) !== value) problems.push(`${name}: header ${Number(m[1])}, runtime ${value}`);
  }
  return problems;
}
