/**
 * The compiler's own FP8 GEMM (compiler/codegen/gemm.ts) against cuBLASLt on the FP8 GEMM shapes of
 * Flux.2 [dev] and Qwen-Image at 1024x1024 (issue 5: >= 90% of cuBLASLt's throughput at the same
 * shapes, <= 1e-3 from the simulation). Prepared here, run on the GPU host:
 *
 *   npx tsx bench/gpu/gemm-own.ts prepare DIR      renders each variant (tile width, stages, promotion)
 *       for each shape, builds them for sm_90a into DIR/kernels.cubin, writes DIR/cases.txt
 *   (GPU) nvcc -O2 -std=c++17 -o go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl && ./go DIR OUT > OUT/log.txt
 *   npx tsx bench/gpu/gemm-own.ts check DIR OUT    holds the sampled outputs the harness wrote to OUT
 *       against the simulation: dc.QLinear with accumulate "sm90" (the tensor cores' own sums, bit
 *       for bit: compiler/quant/tensor-core.ts) for the own kernel and cuBLASLt fast, the exact sums
 *       for cuBLASLt exact; operands regenerated here from the harness's hash (GEMM_OPERANDS harness or
 *       edge: zeros, subnormals and every exponent).
 *       Exits 1 unless every sampled output of the own kernel is the simulation's bit for bit.
 *
 * cases.txt: one line per kernel: `gemm NAME M N K BN GRID SHARED SCALED OUT_BYTES TWIN_M RESIDUAL LABEL` (TWIN_M:
 * the rows of a twin GEMM in the same launch, 0 for none; its samples checked against the simulation too;
 * RESIDUAL 1: the residual epilogue, Y = R + gate · y with the harness's R and two-batch gate, each GEMM's; 2: the
 * amax epilogue over the last third of the columns, timed, its Y checked as any; 3 / 4: the GLU epilogue over W's last
 * two thirds / all of its rows, Y [M, N - width], the window's samples within one bf16 ulp of the simulation and the rest
 * bit for bit). The harness
 * draws random e4m3 codes and positive scales, poisons the output, runs the kernel and cuBLASLt
 * (fast and exact accumulation, unit scales, bf16 out: what the runtime's deferred GEMMs run) on the
 * same operands, checks every output against an fp64-accumulated reference of sampled rows, and
 * times the kernel and cuBLASLt interleaved (median of rounds).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKernels } from '../../compiler/build/index.ts';
import { type GemmDescriptor, renderGemm } from '../../compiler/codegen/gemm.ts';
import { renderUnit } from '../../compiler/codegen/render.ts';
import { ROOT } from '../../compiler/paths.ts';
import type { Node } from '../../compiler/ir/graph.ts';
import { roundToBf16 } from '../../compiler/ir/dtype.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { lookupOp } from '../../compiler/ops/registry.ts';
import { decodeE4M3 } from '../../compiler/quant/formats.ts';
import type { GluWindow } from '../../compiler/ops/quant.ts';

/** [label, M, N, K]: Flux.2 (4096 image + 512 text tokens; single blocks 4608) and Qwen-Image's batch-2 CFG step. */
export const SHAPES: [string, number, number, number][] = [
  ['flux single fused in', 4608, 55296, 6144],
  ['flux single out', 4608, 6144, 24576],
  ['flux img qkv', 4096, 18432, 6144],
  ['flux img out', 4096, 6144, 6144],
  ['flux img mlp in', 4096, 36864, 6144],
  ['flux img mlp out', 4096, 6144, 18432],
  ['flux txt qkv', 512, 18432, 6144],
  ['qwen img qkv (b2)', 8192, 9216, 3072],
  ['qwen img out (b2)', 8192, 3072, 3072],
  ['qwen img mlp in (b2)', 8192, 12288, 3072],
  ['qwen img mlp out (b2)', 8192, 3072, 12288],
  // Row counts off the 128-row tile (Flux.2 at 832x1216: 3952 image + 512 text tokens): the last row
  // tile partial, its loads zero-filled and its stores clipped by the copy engine.
  ['flux 832x1216 single fused in', 4464, 55296, 6144],
  ['odd rows', 300, 9216, 3072],
  // Thin text streams: Flux.2's 512 text tokens over N = 6144, Qwen-Image's 256 (one prompt of the
  // 256-token module): a few row tiles, fewer tiles than two a CTA.
  ['flux txt out', 512, 6144, 6144],
  ['flux txt mlp out', 512, 6144, 18432],
  ['qwen txt qkv (256)', 256, 9216, 3072],
  ['qwen txt out (256)', 256, 3072, 3072],
  ['qwen txt mlp in (256)', 256, 12288, 3072],
  ['qwen txt mlp out (256)', 256, 3072, 12288],
  // Qwen-Image's text stream at the CFG batch of its 32-token module (2 x 32 rows): alone, and as the
  // twin of its image-stream GEMM (variant suffix t64).
  ['qwen txt qkv (b2, 32)', 64, 9216, 3072],
  ['qwen txt out (b2, 32)', 64, 3072, 3072],
  ['qwen txt mlp in (b2, 32)', 64, 12288, 3072],
  ['qwen txt mlp out (b2, 32)', 64, 3072, 12288],
];
/** GEMM_SHAPES: a regular expression over the labels (default: every shape). */
const SHAPE_FILTER = new RegExp(process.env.GEMM_SHAPES ?? '');

/** The last recorded comparison's variants (bench/RESULTS.md "Session 9"), unless GEMM_VARIANTS names others. */
export const DEFAULT_VARIANTS = 'q128s6,q192s4,f256s4';
const VARIANTS = (process.env.GEMM_VARIANTS ?? DEFAULT_VARIANTS).split(',');

/** `f256s4`: fast accumulation, 256 wide, 4 stages; `p192s4x8`: promotion every 8 K blocks; `q128s6`:
 * ping-pong, 128 wide, 6 stages; a trailing
 * `o32`: fp32 output (the accuracy check without bf16's rounding); a trailing `b` / `h`: the scaled
 * epilogue with a float32 / bf16 bias (Y = acc · xs[m] · ws[n] + bias[n], what gemmScales "auto" runs
 * in the models; Qwen-Image's biases are bf16), `n` the scaled epilogue without a bias (Flux.2's); a trailing `g16`: 16 row tiles a group of the tile order;
 * a trailing `t64`: a twin GEMM of 64 rows in the same launch (ping-pong only); a trailing `r`: the residual
 * epilogue (passes/fuse-gemm-residual.ts; scaled ping-pong), a gate of two batches of half the rows each; a trailing
 * `a`: the amax epilogue (passes/fuse-vquant.ts) over the last third of the columns, two batches of half the rows;
 * `u` / `v`: the GLU epilogue (passes/fuse-gemm-glu.ts) over W's last two thirds of rows (Flux.2's single-block fused
 * projection) / all of them (its MLP in-projection). */
export function variant(v: string, m: number, n: number, k: number): GemmDescriptor | undefined {
  const r = /^(f|p|q)(\d+)s(\d+)(?:x(\d+))?(o32)?(b|h|n)?(?:g(\d+))?(?:t(\d+))?(r|a|u|v)?$/.exec(v);
  if (!r) throw new Error(`variant ${v}: f|p|q WIDTH s STAGES [x PROMOTE] [o32] [b|h|n] [g GROUP_M] [t TWIN_M] [r|a|u|v] (q: ping-pong; b / h / n: scaled epilogue with a float32 / bf16 / no bias; g: row tiles per group, default 8; t: a twin GEMM's rows; r: the residual epilogue; a: the amax epilogue; u / v: the GLU epilogue over the last two thirds / all of W's rows)`);
  const bn = Number(r[2]);
  // The epilogues (r, a) need the scaled ping-pong; a: a last third of whole 64-column chunks.
  if (n % bn || (r[8] && r[1] !== 'q') || (r[9] && (r[1] !== 'q' || !r[6])) || (r[9] === 'a' && n % 192)) return undefined;
  const gate = (rows: number) => ({ batches: 2, rowsPerBatch: rows / 2, batchStride: n });
  const residual = r[9] === 'r' ? { residual: { gemms: [gate(m), ...(r[8] ? [gate(Number(r[8]))] : [])] } } : {};
  // `a`: the amax epilogue over the last third of the columns (V's, in a QKV projection), two batches of half the rows.
  const window = (rows: number) => ({ lo: n - n / 3, hi: n, rows: rows / 2, keys: 0, offset: 0 });
  const amax = r[9] === 'a' ? { amax: { gemms: [window(m), ...(r[8] ? [window(Number(r[8]))] : [])] } } : {};
  const glu = gluOf(r[9], n);
  if (glu && (n % 576 || r[6] !== 'n' || r[8])) return undefined;
  return { kind: 'gemm-fp8', m, n, k, bn, stages: Number(r[3]), groupM: Number(r[7] ?? 8), promote: r[1] === 'p' ? Number(r[4] ?? 4) : 0, epilogue: r[6] ? 'scaled' : 'unscaled', bias: !!r[6] && r[6] !== 'n', ...(r[6] === 'h' ? { biasType: 'bfloat16' as const } : {}), ...(r[5] ? { out: 'fp32' as const } : {}), ...(r[1] === 'q' ? { schedule: 'pingpong' as const } : {}), ...(r[8] ? { twinM: Number(r[8]) } : {}), ...residual, ...amax, ...(glu ? { glu } : {}) };
}

/** The GLU window of variant suffix u (W's last two thirds of rows) or v (all of them). */
const gluOf = (suffix: string | undefined, n: number) => (suffix === 'u' ? { lo: n / 3, width: n / 3 } : suffix === 'v' ? { lo: 0, width: n / 2 } : undefined);

async function prepare(dir: string) {
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [];
  const kernels = [];
  for (const [label, m, n, k] of SHAPES.filter(([label]) => SHAPE_FILTER.test(label))) {
    for (const v of VARIANTS) {
      const d = variant(v, m, n, k);
      if (!d) continue;
      const r = renderGemm(d);
      kernels.push(r);
      lines.push(`gemm ${r.name} ${m} ${n} ${k} ${d.bn} ${r.grid} ${r.sharedBytes} ${d.epilogue === 'scaled' ? (d.bias ? (d.biasType === 'bfloat16' ? 3 : 2) : 1) : 0} ${d.out === 'fp32' ? 4 : 2} ${d.twinM ?? 0} ${d.residual ? 1 : d.amax ? 2 : d.glu ? (d.glu.lo ? 3 : 4) : 0} ${v}:${label.replace(/ /g, '_')}`);
    }
  }
  const report = await buildKernels([{ name: 'gemm', source: renderUnit(kernels), hot: true }], { target: 'h100', cacheDir: join(ROOT, '.gpu', 'build-cache') });
  writeFileSync(join(dir, 'kernels.cubin'), report.cubins.get('gemm')!);
  writeFileSync(join(dir, 'cases.txt'), `${lines.join('\n')}\n`);
  for (const fn of report.units[0].functions) console.log(`${fn.name}: ${fn.registers} registers, spills ${fn.spillStoreBytes}/${fn.spillLoadBytes}`);
  console.log(`${lines.length} cases -> ${dir}`);
}

/** bench/gpu/gemm_own.cu's hash (fill_e4m3 'harness' operands, and its scales' draw). */
function harnessHash(i: number, seed: number): number {
  let h = (Math.imul(i >>> 0, 0x9e3779b1) + seed) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  return (h ^ (h >>> 13)) >>> 0;
}
/** The operand code of element i: 'harness' (mode 0) exponents 2^-3..2^2, any sign and mantissa; 'edge'
 * (mode 3) an eighth zeros, a quarter subnormals, the rest normals of every exponent (never NaN). */
export function harnessCode(i: number, seed: number, mode = 0): number {
  const h = harnessHash(i, seed);
  if (mode === 0) return (h & 0x80) | ((4 + ((h >>> 8) % 6)) << 3) | ((h >>> 16) & 7);
  const kind = (h >>> 24) & 7, e = 1 + ((h >>> 8) % 15), m = (h >>> 16) & 7;
  return (h & 0x80) | (kind === 0 ? 0 : kind < 3 ? (m === 0 ? 1 : m) : (e << 3) | (e === 15 && m === 7 ? 6 : m));
}
/** The harness's draw of value i in [lo, hi), in its fp32 arithmetic. */
export function harnessDraw(i: number, seed: number, lo: number, hi: number): number {
  const f = Math.fround;
  return f(lo + f(f(f(hi - lo) * (harnessHash(i, seed) >>> 8)) / 16777216));
}

/** Relative L2 of got against ref, the largest relative deviation, and how many agree bit for bit. */
function compare(got: Float32Array, ref: ArrayLike<number>) {
  let num = 0, den = 0, worst = 0, same = 0, scale = 0;
  for (let i = 0; i < got.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  for (let i = 0; i < got.length; i++) {
    const d = got[i] - ref[i];
    num += d * d; den += ref[i] * ref[i];
    worst = Math.max(worst, Math.abs(d) / scale);
    if (Object.is(got[i], ref[i]) || got[i] === ref[i]) same++;
  }
  return { relL2: Math.sqrt(num / den), worst, same };
}

/** A samples file of the harness: its header (operands mode, rows, columns, M, N, K), sampled rows and columns, and output blocks. */
function readSamples(file: string, expect: { M: number; N: number; K: number }, where: string) {
  const buf = readFileSync(file);
  const ints = Array.from({ length: 6 }, (_, i) => buf.readInt32LE(4 * i));
  const [operands, SR, SC] = [ints[0], ints[1], ints[2]];
  if (operands !== 0 && operands !== 3) throw new Error(`${file}: operands mode ${operands}; the check regenerates only GEMM_OPERANDS=harness or edge`);
  if (ints[3] !== expect.M || ints[4] !== expect.N || ints[5] !== expect.K) throw new Error(`${file}: ${ints[3]}x${ints[4]}x${ints[5]}, ${where} says ${expect.M}x${expect.N}x${expect.K}`);
  const idx = new Int32Array(buf.buffer.slice(buf.byteOffset + 24, buf.byteOffset + 24 + 4 * (SR + SC)));
  const outs = new Float32Array(buf.buffer.slice(buf.byteOffset + 24 + 4 * (SR + SC)));
  return { operands, SR, SC, rows: Array.from(idx.subarray(0, SR)), cols: Array.from(idx.subarray(SR)), got: (s: number) => outs.subarray(s * SR * SC, (s + 1) * SR * SC) };
}

/**
 * QLinear over the harness's operands at sampled rows and columns, as `accumulate` sums them, in
 * `to` (16: bf16): X and W codes from seeds xSeed and wSeed, with the scales and bias (scaled 1-3)
 * drawn from seeds 11, 13, 17 + vecSeed (the twin's: + 10), or unit scales without a bias.
 */
function simulate(s: ReturnType<typeof readSamples>, K: number, seeds: { x: number; w: number; vec: number }, scaled: number, accumulate: string, to: number, withScales: boolean, promote = 0) {
  const codes = (which: number[], seed: number) => Tensor.fromNumbers('float32', [which.length, K], which.flatMap((r) => Array.from({ length: K }, (_, k) => decodeE4M3(harnessCode(r * K + k, seed, s.operands)))));
  const ones = (n: number) => Tensor.fromNumbers('float32', [n, 1], new Array(n).fill(1));
  const sqrtK = Math.fround(Math.sqrt(K));
  const xs = scaled ? Tensor.fromNumbers('float32', [s.SR, 1], s.rows.map((r) => harnessDraw(r, 11 + seeds.vec, 0.5, 2))) : ones(s.SR);
  const ws = scaled ? Tensor.fromNumbers('float32', [s.SC, 1], s.cols.map((c) => harnessDraw(c, 13 + seeds.vec, 0.5, 2))) : ones(s.SC);
  const bias = scaled >= 2 && withScales ? Tensor.fromNumbers('float32', [s.SC], s.cols.map((c) => {
    const v = harnessDraw(c, 17 + seeds.vec, Math.fround(-4 * sqrtK), Math.fround(4 * sqrtK));
    return scaled === 3 ? roundToBf16(v) : v;
  })) : undefined;
  const node: Node = { op: 'QLinear', domain: 'dc', name: 'harness', inputs: ['xq', 'xs', 'wq', 'ws', ...(bias ? ['b'] : [])], outputs: ['y'], attrs: { format: 'fp8', transB: 1, to, accumulate, promote } };
  const ins = [codes(s.rows, seeds.x), withScales ? xs : ones(s.SR), codes(s.cols, seeds.w), withScales ? ws : ones(s.SC), ...(bias ? [bias] : [])];
  const y = (lookupOp(node)!.exec(ins, node) as Tensor[])[0].toNumbers();
  return to === 16 ? y.map(roundToBf16) : y;
}

/**
 * The residual epilogue over sampled outputs y (rows x cols, bf16 values) of a GEMM of `m` rows: R + gate · y,
 * each step rounded to bf16 as the graph's Mul and Add (R and the gate as the harness draws them, seeds
 * 23 and 29 + vec).
 */
function withResidual(y: number[], s: ReturnType<typeof readSamples>, m: number, n: number, vec: number): number[] {
  return y.map((v, i) => {
    const row = s.rows[Math.floor(i / s.SC)], col = s.cols[i % s.SC];
    const r = roundToBf16(harnessDraw(row * n + col, 23 + vec, -512, 512)), g = roundToBf16(harnessDraw(Math.floor(row / (m / 2)) * n + col, 29 + vec, -2, 2));
    return roundToBf16(Math.fround(r + roundToBf16(Math.fround(g * v))));
  });
}

/**
 * A GLU case's own samples (Y's columns) against the simulation: each column's W rows (the window's gate and
 * up rows) as the sm90 QLinear sums them in bf16, then SwiGLU's value (QLinear's glu). Outside the window bit
 * for bit; in it, where the kernel's fast sigmoid (ex2/rcp .approx) may land a bf16 ulp from the exact one,
 * within an ulp, or 0 where the gate is below -87.3 (the fast sigmoid is 0 once e^-g passes 2^126, as the
 * SwiGLU reader's was; the harness's gates reach -10^6): `same` counts the samples that pass.
 */
function gluCompare(s: ReturnType<typeof readSamples>, K: number, seeds: { x: number; w: number; vec: number }, scaled: number, glu: GluWindow) {
  const { lo, width } = glu;
  const wRows = s.cols.flatMap((c) => (c < lo ? [c] : c < lo + width ? [c, c + width] : [c + width]));
  const y = simulate({ ...s, cols: wRows, SC: wRows.length }, K, seeds, scaled, 'sm90', 16, true);
  const want: number[] = [], window: boolean[] = [], flushed: boolean[] = [];
  for (let r = 0; r < s.SR; r++) {
    let at = r * wRows.length;
    for (const c of s.cols) {
      const inWindow = c >= lo && c < lo + width;
      const g = y[at], u = y[at + 1];
      want.push(inWindow ? roundToBf16(g / (1 + Math.exp(-g)) * u) : g);
      window.push(inWindow);
      flushed.push(inWindow && -g * Math.LOG2E > 126);
      at += inWindow ? 2 : 1;
    }
  }
  const got = s.got(0), c = compare(got, want);
  const ulp = (v: number) => 2 ** (Math.floor(Math.log2(Math.abs(v) || 1)) - 7);
  const same = want.filter((w, i) => (window[i] ? Math.abs(got[i] - w) <= ulp(w) || (flushed[i] && got[i] === 0) : Object.is(got[i], w) || got[i] === w)).length;
  return { ...c, same };
}

/** Prints the table; returns how many cases lack samples or have an own-kernel output (a twin's too) that is not the simulation's bit for bit. */
export function check(dir: string, samples: string): number {
  const lines = readFileSync(join(dir, 'cases.txt'), 'utf8').trim().split('\n');
  console.log('| case | M x N x K | outputs | own vs sm90 simulation: rel L2 / worst / bit-identical | own vs exact sums | cuBLASLt fast vs sm90 | cuBLASLt exact vs exact |');
  console.log('| --- | --- | ---: | --- | ---: | --- | --- |');
  let failed = 0;
  lines.forEach((line, index) => {
    const file = join(samples, `case${index}.bin`), twinFile = join(samples, `case${index}-twin.bin`);
    const [, , mS, nS, kS, , , , scaledS, outBytesS, twinS, residualS, label] = line.split(' ');
    const [M, N, K, scaled, outBytes, M2, residual] = [mS, nS, kS, scaledS, outBytesS, twinS, residualS].map(Number);
    const epilogue = (y: number[], t: ReturnType<typeof readSamples>, m: number, vec: number) => (residual === 1 ? withResidual(y, t, m, N, vec) : y);
    if (!existsSync(file) || (M2 && !existsSync(twinFile))) { console.log(`| ${label} | | | no samples (${M2 ? `${file}, ${twinFile}` : file}) | | | |`); failed++; return; }
    const s = readSamples(file, { M, N, K }, `cases.txt line ${index + 1}`);
    const seeds = { x: 1234 + M, w: 5678 + N, vec: 0 };
    const d = variant(label.split(':')[0], M, N, K);
    const ownTo = outBytes === 4 ? 1 : 16;
    // The own kernel: its promotion (K blocks of 128 codes); cuBLASLt fast: none. GLU: the samples are Y's columns.
    const own = d?.glu ? gluCompare(s, K, seeds, scaled, d.glu) : compare(s.got(0), epilogue(simulate(s, K, seeds, scaled, 'sm90', ownTo, true, (d?.promote ?? 0) * 128), s, M, 0));
    const ownExact = d?.glu ? own : compare(s.got(0), epilogue(simulate(s, K, seeds, scaled, 'exact', ownTo, true), s, M, 0));
    const fast = compare(s.got(1), simulate(s, K, seeds, scaled, 'sm90', 16, false));
    const exact = compare(s.got(2), simulate(s, K, seeds, scaled, 'exact', 16, false));
    const n = s.SR * s.SC;
    const cell = (c: ReturnType<typeof compare>, of = n) => `${c.relL2.toExponential(2)} / ${c.worst.toExponential(1)} / ${c.same} of ${of}`;
    if (own.same !== n) failed++;
    console.log(`| ${label} | ${M}x${N}x${K} | ${n} | ${cell(own)} | ${ownExact.relL2.toExponential(2)} | ${cell(fast)} | ${cell(exact)} |`);
    if (!M2) return;
    // The twin: its own operands and vectors (the harness's seeds for it), bf16 Y.
    const t = readSamples(twinFile, { M: M2, N, K }, `cases.txt line ${index + 1}'s twin`);
    const twin = compare(t.got(0), epilogue(simulate(t, K, { x: 4321 + M2, w: 8765 + N, vec: 10 }, scaled, 'sm90', 16, true), t, M2, 10));
    if (twin.same !== t.SR * t.SC) failed++;
    console.log(`| ${label} twin | ${M2}x${N}x${K} | ${t.SR * t.SC} | ${cell(twin, t.SR * t.SC)} | | | |`);
  });
  console.log(failed ? `${failed} case(s) not bit-identical to the simulation or without samples` : 'every own kernel bit-identical to the simulation');
  return failed;
}

const isMain = process.argv[1] && /gemm-own\.ts$/.test(process.argv[1]);
const [cmd, dir, samples] = process.argv.slice(2);
if (isMain && cmd === 'prepare' && dir) await prepare(dir);
else if (isMain && cmd === 'check' && dir && samples) process.exitCode = check(dir, samples) ? 1 : 0;
else if (isMain) {
  console.error('usage: npx tsx bench/gpu/gemm-own.ts prepare DIR | check DIR SAMPLES');
  process.exit(2);
}
