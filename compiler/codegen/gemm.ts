/**
 * The compiler's own FP8 GEMM for sm_90a (templates/gemm_fp8.cu.njk): a persistent, warp-specialised
 * wgmma kernel whose operands arrive by the tensor copy engine. Y[M, N] = X[M, K] · W[N, K]ᵀ with X
 * and W e4m3 codes (K-major rows), fp32 accumulation, bf16 Y; the epilogue is where fusions go
 * (the per-token x per-channel scales and a bias, or none; a gated residual add, V's amax, a SwiGLU).
 *
 * A launch passes three tensor maps by value (X and W: boxes of 128 codes x 128 / BN rows, W 96 with
 * the GLU epilogue; Y: 64 x 64 bf16; all with the 128-byte swizzle), then the output pointer and the
 * epilogue's vectors, then the epilogues' own maps (the residual's R, 64 x 64 bf16; the GLU's Y in
 * 32-column chunks with the 64-byte swizzle).
 * Shapes are baked into the source: N a multiple of the tile's width, K of 128; M any (the copy
 * engine zero-fills rows past M, the epilogue skips them). ownGemm() is the plan's route to it:
 * a deferred GEMM (unscaled epilogue) or, by default with policy gemm "own", one that applies its
 * own scales and bias (scaled epilogue, gemmScales "auto").
 * A twin (twinM rows; dc.GroupedGemm): a second GEMM of the same N and K in the same launch, its
 * tensor maps and epilogue vectors after the first's, its tiles after the first's in the tile order.
 * Accumulation: 'fast' keeps one accumulator over all of K (cuBLASLt's fast accumulation);
 * `promote: P` adds each P-block sum (P x 128 of K) into a separate fp32 sum, which bounds the
 * tensor cores' shorter accumulation to P x 128 terms.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { fail } from '../errors.ts';
import { jsonHash16 } from '../hash.ts';
import { ROOT } from '../paths.ts';
import { wgmmaFunction } from './attention.ts';
import { H100_SMS } from './device.ts';
import type { GluWindow } from '../ops/quant.ts';
import type { TensorMapArg } from './plan.ts';
import type { RenderedKernel } from './render.ts';

const TEMPLATES = join(ROOT, 'templates');
const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(TEMPLATES), { autoescape: false, throwOnUndefined: true });
const text = (file: string) => readFileSync(join(TEMPLATES, file), 'utf8');

/** Shared memory a CTA may take on the H100 (227 KB). */
const MAX_SHARED = 232448;

export interface GemmDescriptor {
  kind: 'gemm-fp8';
  m: number; n: number; k: number;
  /** Output tile width (the tile is 128 rows): 128, 192 or 256 (256 only with fast accumulation, cooperative). */
  bn: number;
  /**
   * 'cooperative' (default): both consumer warpgroups on each tile, 64 rows each; 'pingpong': each
   * warpgroup a whole tile of its own (two m64 halves, fast accumulation, width <= 192), the two
   * alternating on the tensor cores so that one's epilogue runs under the other's K loop.
   */
  schedule?: 'cooperative' | 'pingpong';
  /** Shared-memory stages of (X, W) K blocks. */
  stages: number;
  /** Row tiles per group of the tile order (L2 reuse among the CTAs running at once). */
  groupM: number;
  /** K blocks (of 128) summed on the tensor cores before they are added into the fp32 sum; 0: never (fast). */
  promote: number;
  epilogue: 'unscaled' | 'scaled';
  bias: boolean;
  /** The bias's element type (default float32; a model's own bias is often bf16). */
  biasType?: 'float32' | 'bfloat16';
  /** Y's element type (fp32: accuracy checks against the simulation without the output's rounding). */
  out?: 'bf16' | 'fp32';
  /** Rows of a twin GEMM (same N, K, epilogue; ping-pong, bf16 Y) run in the same launch, its tiles last. */
  twinM?: number;
  /**
   * The residual epilogue (ping-pong, scaled, bf16 Y): Y = R + gate ⊙ y (QLinear epilogue 'residual'),
   * the gate [B, N] by each row's batch (row / rowsPerBatch; B = 1: every row), per GEMM of the launch.
   */
  residual?: { gemms: ResidualGate[] };
  /**
   * The amax epilogue (ping-pong, scaled, bf16 Y; QLinear attribute amax): per GEMM of the launch, the
   * amax of |Y| over each batch's rows of columns lo .. hi - 1 (hi = lo: none), and where the key mask
   * (one for the launch: its element type, window over (b, k)) drops keys `keys` first ones of which
   * row 0 of a batch is key `offset`.
   */
  amax?: { gemms: AmaxWindow[]; mask?: AmaxMask };
  /**
   * The GLU epilogue (ping-pong, scaled without a bias, bf16 Y, 192 wide, no twin or residual; QLinear attribute
   * glu): W's rows lo .. lo + width - 1 (gate) and the next width (up) make `width` outputs silu(g)·u at Y's
   * columns lo ..; Y is N - width wide (columns past the window moved down). lo a multiple of the tile width,
   * width of 96 (half a tile: a window tile takes 96 gate and 96 up rows).
   */
  glu?: GluWindow;
}

/** A GEMM's amax window: columns lo .. hi - 1 (multiples of 64: whole chunks of the staged tile), `rows` a batch (a multiple of 16); with the launch's mask, `keys` maskable keys (0: none) and row 0's key `offset`. */
export interface AmaxWindow { lo: number; hi: number; rows: number; keys: number; offset: number }
/** The key mask an amax launch reads: its C type, bool or additive, element offset and strides over (batch, key). */
export interface AmaxMask { type: string; bool: boolean; offset: number; b: number; t: number }

/** A residual GEMM's gate: `batches` rows of N (1: broadcast over every row), `rowsPerBatch` rows of Y each, `batchStride` elements apart. */
export interface ResidualGate { batches: number; rowsPerBatch: number; batchStride: number }

/** Staged gate rows a residual tile of 128 rows may reach: all of B, or those 128 rows span. */
const gateRows = (g: Pick<ResidualGate, 'batches' | 'rowsPerBatch'>) => (g.batches === 1 || g.rowsPerBatch % 128 === 0 ? 1 : Math.min(g.batches, Math.ceil(128 / g.rowsPerBatch) + 1));

/**
 * Whether the residual epilogue takes a gate of these batches: a thread's two rows (8 apart in a 16-row
 * group) share one batch (rows a batch a multiple of 16), and a tile's staged gate rows stay at two (the
 * shared memory the records take beside four stages: a third row, or rows a batch under 128 with more
 * than two batches, passes the 227 KB a CTA has with the second warpgroup's).
 */
export const residualGateFits = (g: Pick<ResidualGate, 'batches' | 'rowsPerBatch'>) =>
  Number.isInteger(g.rowsPerBatch) && (g.batches === 1 || g.rowsPerBatch % 16 === 0) && gateRows(g) <= 2;

/** The ping-pong's scaled epilogue reads its tile's scales from shared memory (the template's stagedScales). */
const stagedScales = (d: Pick<GemmDescriptor, 'epilogue' | 'schedule'>) => d.epilogue === 'scaled' && d.schedule === 'pingpong';

/**
 * Dynamic shared memory: alignment slack, the stages, a bf16 Y's 8 KB chunk buffers (two a consumer; the
 * residual epilogue's one a chunk of a half tile), the two consumers' staged scales (ping-pong, scaled: BN
 * column scales, BN biases, 128 token scales each; residual: its 16-byte records a gate row instead of the
 * column scales and biases), the barriers (two more a consumer for the residual epilogue's R).
 */
/** A GLU window the epilogue takes: its first W row at a multiple of the 192-wide tile, its width of 96 rows (half a tile) or a multiple. */
export const gluWindowFits = (lo: number, width: number) => Number.isInteger(lo) && Number.isInteger(width) && lo >= 0 && width >= 96 && lo % 192 === 0 && width % 96 === 0;
export const gemmSharedBytes = (d: Pick<GemmDescriptor, 'bn' | 'stages' | 'out'> & Partial<Pick<GemmDescriptor, 'epilogue' | 'schedule' | 'residual'>>) =>
  1024 + d.stages * (128 * 128 + d.bn * 128) + (d.out === 'fp32' ? 0 : 2 * (d.residual ? d.bn / 64 : 2) * 8192)
  + (d.residual ? 2 * (Math.max(...d.residual.gemms.map(gateRows)) * (d.bn / 2) * 16 + 128 * 4) + 32
    : stagedScales({ epilogue: d.epilogue ?? 'unscaled', schedule: d.schedule }) ? 2 * (2 * d.bn + 128) * 4 : 0) + 16 * d.stages;

/** Rendered kernels by descriptor: a model repeats a few GEMM shapes over its blocks. */
const rendered = new Map<string, RenderedKernel>();

export function renderGemm(d: GemmDescriptor): RenderedKernel {
  const key = JSON.stringify(d);
  const hit = rendered.get(key);
  if (hit) return hit;
  const kernel = render(d);
  rendered.set(key, kernel);
  return kernel;
}

function render(d: GemmDescriptor): RenderedKernel {
  const name = `gemm8_${jsonHash16({ d, t: text('gemm_fp8.cu.njk'), h: text('attention.cuh') })}`;
  const where = `FP8 GEMM kernel ${name} (${d.m}x${d.n}x${d.k})`;
  for (const [key, min] of [['m', 1], ['n', 1], ['k', 1], ['groupM', 1], ['stages', 2], ['promote', 0]] as const) {
    // One stage deadlocks: a consumer releases block kb's stage only after issuing block kb + 1's MMAs.
    if (!Number.isInteger(d[key]) || d[key] < min) fail(where, `${key} an integer >= ${min}${key === 'stages' ? ' (a stage is released one K block late)' : ''}`, String(d[key]));
  }
  if (![128, 192, 256].includes(d.bn)) fail(where, 'an output tile 128, 192 or 256 wide', String(d.bn));
  if (d.n % d.bn !== 0) fail(where, `N a multiple of the tile width ${d.bn}`, String(d.n));
  if (d.k % 128 !== 0) fail(where, 'K a multiple of 128', String(d.k));
  if (d.promote && d.bn > 192) fail(where, 'two accumulators in registers (tile width <= 192 with promotion)', String(d.bn));
  if (d.schedule === 'pingpong' && (d.promote || d.bn > 192)) fail(where, 'a ping-pong tile of 128 rows in registers (fast accumulation, width <= 192)', `width ${d.bn}${d.promote ? ', promotion' : ''}`);
  if (d.bias && d.epilogue !== 'scaled') fail(where, 'a bias with the scaled epilogue', d.epilogue);
  if (d.twinM !== undefined && !(Number.isInteger(d.twinM) && d.twinM >= 1 && d.schedule === 'pingpong' && d.out !== 'fp32')) fail(where, 'a twin of at least one row with the ping-pong schedule and a bf16 Y', `twin rows ${d.twinM}, ${d.schedule ?? 'cooperative'}, ${d.out ?? 'bf16'}`);
  if (d.residual) {
    if (d.schedule !== 'pingpong' || d.epilogue !== 'scaled' || d.out === 'fp32') fail(where, 'the residual epilogue in the ping-pong schedule with scales and a bf16 Y', `${d.schedule ?? 'cooperative'}, ${d.epilogue}, ${d.out ?? 'bf16'}`);
    // A thread's two rows (8 apart in a 16-row group) take one batch's gate: rows a batch a multiple of 16.
    if (d.residual.gemms.length !== (d.twinM ? 2 : 1) || d.residual.gemms.some((g) => !(Number.isInteger(g.batches) && g.batches >= 1 && g.rowsPerBatch >= 1 && residualGateFits(g)))) fail(where, 'a gate for each GEMM of the launch (batches and rows a batch whole numbers >= 1, rows a batch a multiple of 16 with several batches, at most two gate rows a tile)', JSON.stringify(d.residual.gemms));
    if (d.bias && d.biasType !== 'bfloat16') fail(where, 'no bias or a bf16 one with the residual epilogue (a 16-byte record a column pair)', d.biasType ?? 'float32');
  }
  if (d.amax) {
    if (d.schedule !== 'pingpong' || d.epilogue !== 'scaled' || d.out === 'fp32' || d.residual) fail(where, 'the amax epilogue in the ping-pong schedule with scales, a bf16 Y and no residual', `${d.schedule ?? 'cooperative'}, ${d.epilogue}, ${d.out ?? 'bf16'}${d.residual ? ', residual' : ''}`);
    if (d.amax.gemms.length !== (d.twinM ? 2 : 1) || d.amax.gemms.some((a) => a.lo % 64 || a.hi % 64 || a.lo > a.hi || a.hi > d.n || a.rows % 16 || a.rows < 16 || (a.keys && !d.amax!.mask))) fail(where, 'an amax window for each GEMM of the launch (columns multiples of 64 within N, rows a batch a multiple of 16, a mask where keys are masked)', JSON.stringify(d.amax));
  }
  if (d.glu) {
    const { lo, width } = d.glu;
    if (d.schedule !== 'pingpong' || d.epilogue !== 'scaled' || d.bias || d.out === 'fp32' || d.bn !== 192 || d.twinM !== undefined || d.residual) fail(where, 'the GLU epilogue in the ping-pong schedule, 192 wide, with scales and no bias, a bf16 Y, no twin and no residual', `${d.schedule ?? 'cooperative'}, ${d.bn} wide, ${d.epilogue}${d.bias ? ', bias' : ''}, ${d.out ?? 'bf16'}${d.twinM !== undefined ? ', twin' : ''}${d.residual ? ', residual' : ''}`);
    if (!(gluWindowFits(lo, width) && lo + 2 * width <= d.n)) fail(where, 'a GLU window of W rows at a multiple of 192, 2 x width rows (width a multiple of 96) within N', `[${lo}, ${width}] of ${d.n}`);
    // Before the window: a tile past it starts at Y's column n0 - width, off the amax epilogue's 64-column chunks where width is an odd multiple of 96.
    if (d.amax?.gemms.some((a) => a.lo < a.hi && a.hi > lo)) fail(where, `amax windows before the GLU outputs (Y's columns from ${lo})`, JSON.stringify(d.amax.gemms));
  }
  const shared = gemmSharedBytes(d);
  if (shared > MAX_SHARED) fail(where, `at most ${MAX_SHARED} bytes of shared memory`, `${shared} (${d.stages} stages)`);
  const mma = wgmmaFunction('ss-e4m3', d.bn);
  const source = [text('attention.cuh'), mma.source, env.render('gemm_fp8.cu.njk', {
    name, m: d.m, n: d.n, k: d.k, bn: d.bn, stages: d.stages, groupM: d.groupM, promote: d.promote,
    scaled: d.epilogue === 'scaled', stagedScales: stagedScales(d), bias: d.bias, biasType: d.biasType === 'bfloat16' ? '__nv_bfloat16' : 'float', wgmma: mma.name, pingpong: d.schedule === 'pingpong', outType: d.out === 'fp32' ? 'float' : '__nv_bfloat16', tmaStore: d.out !== 'fp32',
    // A warpgroup's chunks of a tile alternate between its two buffers; an odd count (cooperative, 192
    // wide) starts the next tile on the buffer of the previous tile's last (latest) store.
    oddChunks: d.schedule !== 'pingpong' && (d.bn / 64) % 2 === 1,
    twin: d.twinM !== undefined, twinM: d.twinM ?? 0,
    residual: !!d.residual, ...(d.residual ? residualParams(d.residual.gemms) : {}),
    amax: !!d.amax, ...(d.amax ? amaxParams(d.amax) : {}),
    glu: d.glu ?? false,
  })].join('\n');
  const tiles = gemmTiles(d.m, d.n, d.bn, d.twinM);
  return { name, source, hot: true, grid: Math.min(H100_SMS, tiles), block: 384, sharedBytes: shared };
}

/** The template's residual values: the launch's largest staged gate rows, each GEMM's batches and rows a batch. */
const residualParams = (gemms: ResidualGate[]) => {
  const [a, b] = gemms;
  // Rows a batch all powers of two: the template shifts by their log2 instead of dividing (registers: a division spills).
  const shift = gemms.every((g) => (g.rowsPerBatch & (g.rowsPerBatch - 1)) === 0);
  const rows = (g: ResidualGate | undefined) => (g ? (shift ? Math.log2(g.rowsPerBatch) : g.rowsPerBatch) : 1);
  return {
    gateRows: Math.max(...gemms.map(gateRows)), gateShift: shift, gateBatches: a.batches, rowsPerBatch: rows(a), gateStride: a.batchStride,
    gateBatches2: b?.batches ?? 1, rowsPerBatch2: rows(b), gateStride2: b?.batchStride ?? 0,
  };
};

/** The template's amax values: each GEMM's window, the mask's type (read by the preamble's dc_load), window and test. */
const amaxParams = (a: NonNullable<GemmDescriptor['amax']>) => ({
  amax1: a.gemms[0], amax2: a.gemms[1] ?? a.gemms[0], amaxMask: !!a.mask,
  ...(a.mask ? { maskType: a.mask.type, maskBool: a.mask.bool, maskAt: a.mask } : {}),
});

/** Output tiles of a launch: the GEMM's (128-row tiles) and its twin's. */
const gemmTiles = (m: number, n: number, bn: number, twinM = 0) => (Math.ceil(m / 128) + Math.ceil(twinM / 128)) * (n / bn);

/** Element types of a scaled epilogue's vectors: float32 token and column scales, a float32 or bf16 bias. */
export interface ScaledTypes { xs: string; ws: string; bias?: string }
const scaledTypesFit = (t: ScaledTypes) => t.xs === 'float32' && t.ws === 'float32' && (t.bias === undefined || t.bias === 'float32' || t.bias === 'bfloat16');

/**
 * Output tiles (128 x 192) from which the own kernel takes a GEMM by default: two a CTA of the
 * persistent grid. By measurement (H100 80GB HBM3, bench/RESULTS.md "Session 10: thin GEMMs"): with
 * fewer, SMs idle (Qwen-Image's 256-token text stream: 32-128 tiles, 0.48-0.87x cuBLASLt, which
 * splits K; 300 x 9216 x 3072, 144 tiles: 0.70x), and the cooperative schedule does no better.
 */
export const OWN_GEMM_MIN_TILES = 2 * H100_SMS;

/** L2 bytes the X rows of one group of the tile order may take (an H100's 50 MB of L2 in two halves). */
const GROUP_X_BYTES = 16 << 20;
/**
 * Row tiles per group of the tile order (GemmDescriptor.groupM). The CTAs running at once share each
 * W tile among the group's rows, so W is read from memory once per group: as few groups as keep a
 * group's X rows (128 x K codes a row tile) within GROUP_X_BYTES, at least 8 row tiles each, the rows
 * spread evenly. H100 80GB HBM3, the power-capped models (bench/RESULTS.md "Session 15: the own GEMM's
 * tile order"): outputs bit-identical; against 8 a group, steps even to 1 ms faster; every row in one
 * group (X then 25-28 MB, past half the L2) 4-6 ms slower, the card's clock lower at the same power.
 */
export function groupRows(m: number, k: number): number {
  const rowTiles = Math.ceil(m / 128), most = Math.max(8, Math.floor(GROUP_X_BYTES / (128 * k)));
  return Math.ceil(rowTiles / Math.ceil(rowTiles / most));
}

/**
 * Whether the own kernel runs two GEMMs of one N and K (`bigM` and `smallM` rows) as one launch, the
 * smaller as the twin (dc.GroupedGemm), where it would not take the smaller alone: it takes the pair,
 * and the smaller's own launch would go to cuBLASLt. H100 80GB HBM3, bench/RESULTS.md "Session 16: twin
 * GEMMs": such a twin costs its big twin 0-3% in the GEMM harness, where its own launch took 7-14 µs; a
 * twin the own kernel takes alone (Flux.2's 512-row text QKV, 384 tiles) cost 33 µs more grouped.
 */
export const ownGemmTakesAsTwins = (bigM: number, smallM: number, n: number, k: number, scaled: ScaledTypes | undefined, minTiles: number) =>
  ownGemmTakes(bigM, n, k, 'bfloat16', scaled, minTiles, smallM) && !ownGemmTakes(smallM, n, k, 'bfloat16', scaled, minTiles);

/**
 * Whether the own kernel takes an FP8 GEMM of this shape writing Y in `yType` (ownGemm's route):
 * N a multiple of the tile width, K of 128, at least `minTiles` output tiles; with `scaled` the
 * element types of its scales and bias where its epilogue applies them. With `twinM`, the launch
 * also runs a twin of that many rows (bf16 Y only), and the tiles counted are both GEMMs'.
 */
export const ownGemmTakes = (m: number, n: number, k: number, yType: string, scaled?: ScaledTypes, minTiles = OWN_GEMM_MIN_TILES, twinM = 0) =>
  m >= 1 && k % 128 === 0 && n % 192 === 0 && gemmTiles(m, n, 192, twinM) >= minTiles && (yType === 'bfloat16' || (yType === 'float32' && !twinM)) && (!scaled || scaledTypesFit(scaled));

/**
 * The own FP8 GEMM for an M x N x K GEMM writing Y in `yType` (bfloat16: through the tensor store;
 * float32: from registers, its Y map unused), or undefined where it does not take the shape.
 * `scaled`: undefined for a deferred GEMM (its readers apply the scales), else the element types of
 * xs, ws and the bias, which its epilogue applies (Y = acc · xs[m] · ws[n] (+ bias[n]), QLinear's
 * value; the launch passes xs, ws and the bias after Y's pointer). By
 * measurement (H100, bench/RESULTS.md "Session 9: the compiler's own FP8 GEMM"): the
 * ping-pong schedule with 128 x 192 tiles and 4 stages (bf16 Y), 0.94-1.14x cuBLASLt (three runs) on the Flux.2 and
 * Qwen-Image shapes; with promotion the cooperative one (two accumulators a thread). GEMMs of fewer
 * than `minTiles` output tiles (OWN_GEMM_MIN_TILES) stay with cuBLASLt.
 * `twinM` (dc.GroupedGemm, fast accumulation): a twin GEMM of that many rows, the same N and K and
 * epilogue, in the same launch; its arguments (X2, W2, Y2, Y2's pointer, then xs2, ws2, bias2 as the
 * first's) follow the first's, and its maps the first's.
 * `residual` (QLinear epilogue 'residual', scaled, bf16 Y, fast accumulation): each GEMM's gate, whose
 * pointer and R's map follow its other arguments.
 * `amax` (QLinear attribute amax, scaled, bf16 Y): each GEMM's window; its amax output (and, with a
 * mask, the mask) follow its other arguments. The launch must come after the outputs are zeroed
 * (renderAmaxZero).
 */
export function ownGemm(
  m: number, n: number, k: number, promote: number, yType: string = 'bfloat16', scaled?: ScaledTypes, minTiles = OWN_GEMM_MIN_TILES, twinM?: number,
  residual?: ResidualGate[], amax?: NonNullable<GemmDescriptor['amax']>, glu?: GluWindow,
): { kernel: RenderedKernel; maps: TensorMapArg[] } | undefined {
  const bn = 192;
  if (!ownGemmTakes(m, n, k, yType, scaled, minTiles, twinM) || (twinM && promote) || ((residual || amax || glu) && (promote || !scaled || yType !== 'bfloat16'))) return undefined;
  const f32 = yType === 'float32';
  const kernel = renderGemm({
    kind: 'gemm-fp8', m, n, k, bn, stages: 4, groupM: groupRows(m, k), promote, epilogue: scaled ? 'scaled' : 'unscaled', bias: !!scaled?.bias,
    ...(scaled?.bias === 'bfloat16' ? { biasType: 'bfloat16' as const } : {}),
    // fp32 Y (float32 graphs: the tiny fixtures; accuracy checks) takes the cooperative schedule: the
    // ping-pong's fp32 stores from registers with staged scales spill 8 bytes (sm_90a, CUDA 13.0).
    ...(promote || f32 ? {} : { schedule: 'pingpong' as const }), ...(f32 ? { out: 'fp32' as const } : {}),
    ...(twinM ? { twinM } : {}), ...(residual ? { residual: { gemms: residual } } : {}), ...(amax ? { amax } : {}), ...(glu ? { glu } : {}),
  });
  // Y's width: N, or N less the GLU window's width.
  const ny = n - (glu?.width ?? 0);
  const maps = (first: number, rows: number): TensorMapArg[] => [
    { param: first, dtype: 'uint8', rows, cols: k, rowBytes: k, box: [128, 128] },
    { param: first + 1, dtype: 'uint8', rows: n, cols: k, rowBytes: k, box: [128, glu ? 96 : bn] },
    f32 ? { param: first + 2, dtype: 'float32', rows, cols: n, rowBytes: 4 * n, box: [32, 64] } : { param: first + 2, dtype: 'bfloat16', rows, cols: ny, rowBytes: 2 * ny, box: [64, 64] },
  ];
  // A GEMM's arguments: X, W, Y (maps), Y's pointer, then (scaled) xs, ws and the bias, then (residual) the gate and R (a map).
  // (amax) the amax output and the key mask; (glu) Y again, for its 32-column map (64-byte rows: the 64-byte swizzle).
  const perGemm = 4 + (scaled ? 2 + (scaled.bias ? 1 : 0) : 0) + (residual ? 2 : 0) + (amax ? (amax.mask ? 2 : 1) : 0) + (glu ? 1 : 0);
  const gluMap: TensorMapArg[] = glu ? [{ param: perGemm - 1, dtype: 'bfloat16', rows: m, cols: ny, rowBytes: 2 * ny, box: [32, 64] }] : [];
  const rMap = (first: number, rows: number): TensorMapArg[] => (residual ? [{ param: first + perGemm - 1, dtype: 'bfloat16', rows, cols: n, rowBytes: 2 * n, box: [64, 64] }] : []);
  return { kernel, maps: [...maps(0, m), ...rMap(0, m), ...gluMap, ...(twinM ? [...maps(perGemm, twinM), ...rMap(perGemm, twinM)] : [])] };
}

/**
 * The amax epilogue's outputs zeroed before its GEMM (the epilogue takes maxima into them): one small
 * launch over each GEMM's [B, count] floats.
 */
export function renderAmaxZero(counts: number[]): RenderedKernel {
  const total = Math.max(...counts);
  const name = `zero_${jsonHash16({ counts })}`;
  const params = counts.map((_, i) => `float* __restrict__ a${i}`).join(', ');
  const body = counts.map((c, i) => `  if (i < ${c}) a${i}[i] = 0.f;`).join('\n');
  const source = `extern "C" __global__ void __launch_bounds__(256) ${name}(${params}) {\n  const int i = blockIdx.x * 256 + threadIdx.x;\n${body}\n}`;
  return { name, source, hot: false, grid: Math.ceil(total / 256), block: 256, sharedBytes: 0 };
}
