/**
 * The compiler's own FP8 GEMM (compiler/codegen/gemm.ts) against cuBLASLt on the FP8 GEMM shapes of
 * Flux.2 [dev] and Qwen-Image at 1024x1024 (issue 5: >= 90% of cuBLASLt's throughput at the same
 * shapes, <= 1e-3 from the simulation). Prepared here, run on the GPU host:
 *
 *   npx tsx bench/gpu/gemm-own.ts prepare DIR      renders each variant (tile width, stages, promotion)
 *       for each shape, builds them for sm_90a into DIR/kernels.cubin, writes DIR/cases.txt
 *   (GPU) nvcc -O2 -std=c++17 -o go bench/gpu/gemm_own.cu -lcuda -lcublasLt && ./go DIR > OUT/log.txt
 *
 * cases.txt: one line per kernel: `gemm NAME M N K BN GRID SHARED SCALED OUT_BYTES LABEL`. The harness
 * draws random e4m3 codes and positive scales, poisons the output, runs the kernel and cuBLASLt
 * (fast and exact accumulation, unit scales, bf16 out: what the runtime's deferred GEMMs run) on the
 * same operands, checks every output against an fp64-accumulated reference of sampled rows, and
 * times the kernel and cuBLASLt interleaved (median of rounds).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKernels } from '../../compiler/build/index.ts';
import { type GemmDescriptor, renderGemm } from '../../compiler/codegen/gemm.ts';
import { renderUnit } from '../../compiler/codegen/render.ts';
import { ROOT } from '../../compiler/paths.ts';

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
 * in the models; Qwen-Image's biases are bf16); a trailing `g16`: 16 row tiles a group of the tile order. */
export function variant(v: string, m: number, n: number, k: number): GemmDescriptor | undefined {
  const r = /^(f|p|q)(\d+)s(\d+)(?:x(\d+))?(o32)?(b|h)?(?:g(\d+))?$/.exec(v);
  if (!r) throw new Error(`variant ${v}: f|p|q WIDTH s STAGES [x PROMOTE] [o32] [b|h] [g GROUP_M] (q: ping-pong; b / h: scaled epilogue with a float32 / bf16 bias; g: row tiles per group, default 8)`);
  const bn = Number(r[2]);
  if (n % bn) return undefined;
  return { kind: 'gemm-fp8', m, n, k, bn, stages: Number(r[3]), groupM: Number(r[7] ?? 8), promote: r[1] === 'p' ? Number(r[4] ?? 4) : 0, epilogue: r[6] ? 'scaled' : 'unscaled', bias: !!r[6], ...(r[6] === 'h' ? { biasType: 'bfloat16' as const } : {}), ...(r[5] ? { out: 'fp32' as const } : {}), ...(r[1] === 'q' ? { schedule: 'pingpong' as const } : {}) };
}

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
      lines.push(`gemm ${r.name} ${m} ${n} ${k} ${d.bn} ${r.grid} ${r.sharedBytes} ${d.epilogue === 'scaled' ? (d.bias ? (d.biasType === 'bfloat16' ? 3 : 2) : 1) : 0} ${d.out === 'fp32' ? 4 : 2} ${v}:${label.replace(/ /g, '_')}`);
    }
  }
  const report = await buildKernels([{ name: 'gemm', source: renderUnit(kernels), hot: true }], { target: 'h100', cacheDir: join(ROOT, '.gpu', 'build-cache') });
  writeFileSync(join(dir, 'kernels.cubin'), report.cubins.get('gemm')!);
  writeFileSync(join(dir, 'cases.txt'), `${lines.join('\n')}\n`);
  for (const fn of report.units[0].functions) console.log(`${fn.name}: ${fn.registers} registers, spills ${fn.spillStoreBytes}/${fn.spillLoadBytes}`);
  console.log(`${lines.length} cases -> ${dir}`);
}

const isMain = process.argv[1] && /gemm-own\.ts$/.test(process.argv[1]);
const [cmd, dir] = process.argv.slice(2);
if (isMain && cmd === 'prepare' && dir) await prepare(dir);
else if (isMain) {
  console.error('usage: npx tsx bench/gpu/gemm-own.ts prepare DIR');
  process.exit(2);
}
