/**
 * Convolution kernels: a dc.FusedConv (passes/lower-conv.ts) becomes a ConvDescriptor — shapes,
 * padding, the folded nearest upsampling, element types, and the tile — rendered by
 * templates/conv_wgmma.cu.njk where `wg` is set (bf16, 64+ output channels, odd kernel widths:
 * every wide convolution of the VAE decoders; implicit GEMM on wgmma on sm_90a, mma.sync over the
 * same tiles on sm_100a, which has no wgmma) and by templates/conv.cu.njk otherwise (implicit GEMM
 * on mma.sync bf16: the 3-channel conv_out, the fp32 test fixtures; see each header).
 *
 * Layout: activations stay NCHW as exported (every neighbouring kernel — norms, element-wise,
 * attention's edges — reads that layout); the kernel transposes its input tile to channels-
 * innermost on the way to shared memory. Weights are OHWI, prepared once at load time.
 *
 * Tile choice: BM (output channels per CTA) is the largest of 128/64/32/16 that wastes no more
 * than a 16-multiple would (Co = 3 -> 16, 96 -> 32, 192 -> 64, 384 -> 128); the pixel tile is 256
 * pixels (512 when BM = 16), 64 wide (the output width when narrower), eight warps.
 * Paths: bf16 activations whose rows split into 16-byte vectors are copied by cp.async while the
 * previous chunk's MMAs run, then transposed in shared memory; anything else (the fp32 test
 * fixtures) is loaded element by element. bf16 weights with Ci % 8 == 0 arrive by cp.async; others are converted on the way.
 * fp32 activations and weights are rounded to bf16 for the tensor cores (fp32 accumulation).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { fail } from '../errors.ts';
import type { DType } from '../ir/dtype.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { ROOT } from '../paths.ts';
import { PREAMBLE, type RenderedKernel } from './render.ts';
import { jsonHash16 } from '../hash.ts';

export interface ConvDescriptor {
  kind: 'conv';
  n: number; ci: number; co: number;
  /** Source spatial size (before the folded upsampling), the factor, the output size. */
  hs: number; ws: number; up: number; ho: number; wo: number;
  kh: number; kw: number; pt: number; pl: number;
  xType: string; wType: string; bType?: string; yType: string;
  tile: { bm: number; warpsM: number; mt: number; nt: number; th: number; tw: number };
  /** The warpgroup kernel's tile (templates/conv_wgmma.cu.njk) where it applies; `tile` is then unused. */
  wg?: WgTile;
}

/** Warpgroup tile: BM = 64 * wgm output channels, th x tw output pixels computed as `2 / wgm` runs of
 * `nwg` consecutive positions of row pitch pws = tw + kw - 1; pxs pixel rows per 8-channel block. */
export interface WgTile { bm: number; wgm: number; nwg: number; th: number; tw: number; pws: number; pxs: number }

const C_TYPE: Partial<Record<DType, string>> = { bfloat16: '__nv_bfloat16', float32: 'float' };
const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(ROOT, 'templates')), { autoescape: false, throwOnUndefined: true });
const THREADS = 256;
const TEMPLATE = () => readFileSync(join(ROOT, 'templates', 'conv.cu.njk'), 'utf8');
const TEMPLATE_WG = () => readFileSync(join(ROOT, 'templates', 'conv_wgmma.cu.njk'), 'utf8');

/** Output pixels a tile spans across a row: 64, or the power of two >= 8 that holds a narrower row (the pixel tiles, 256 and 512, are whole rows of it; the last tile of a row may be partial). */
const tileWidth = (wo: number) => Math.min(64, 2 ** Math.ceil(Math.log2(Math.max(8, wo))));

export function convDescriptor(graph: Graph, node: Node): ConvDescriptor {
  const where = `FusedConv kernel -> ${node.outputs[0]}`;
  const t = (v: string) => graph.types.get(v) as unknown as { dtype: DType; shape: number[] };
  const ctype = (v: string) => C_TYPE[t(v).dtype] ?? fail(where, 'bf16 or fp32 operands', `${t(v).dtype} '${v}'`);
  const conv = node.body?.nodes.find((b) => b.op === 'Conv');
  if (!conv) fail(where, 'a body with a Conv', 'none');
  const [n, ci, hs, ws] = t(node.inputs[0]).shape;
  const [co, kh, kw, wci] = t(node.inputs[1]).shape;
  const [, yco, ho, wo] = t(node.outputs[0]).shape;
  const up = (node.attrs.upsample as number | undefined) ?? 1;
  const pads = (conv.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
  if (wci !== ci || yco !== co) fail(where, `weights [Co, kh, kw, ${ci}] for ${ci} input channels`, `[${t(node.inputs[1]).shape}]`);
  if (pads.some((p) => p < 0 || p >= Math.max(kh, kw))) fail(where, 'pads smaller than the kernel', `[${pads}]`);
  // BM: the largest tile whose padding of Co is no worse than the 16-row tile's.
  const waste = (bm: number) => Math.ceil(co / bm) * bm - co;
  const bm = [128, 64, 32, 16].find((b) => waste(b) <= waste(16))!;
  const layout = { 128: { warpsM: 2, mt: 4 }, 64: { warpsM: 2, mt: 2 }, 32: { warpsM: 2, mt: 1 }, 16: { warpsM: 1, mt: 1 } }[bm]!;
  const nt = 8;
  const pixels = (THREADS / 32 / layout.warpsM) * nt * 8;
  const tw = tileWidth(wo);
  if (pixels % tw) fail(where, 'an output width whose tile divides the pixel tile', `${wo}`);
  const d: ConvDescriptor = {
    kind: 'conv', n, ci, co, hs, ws, up, ho, wo, kh, kw, pt: pads[0], pl: pads[1],
    xType: ctype(node.inputs[0]), wType: ctype(node.inputs[1]), ...(node.inputs[2] ? { bType: ctype(node.inputs[2]) } : {}), yType: ctype(node.outputs[0]),
    tile: { bm, ...layout, nt, th: pixels / tw, tw },
  };
  const wg = wgTile(d);
  return wg ? { ...d, wg } : d;
}

/**
 * The warpgroup kernel takes bf16 activations and weights on the staged path (rows in 16-byte
 * vectors, Ci % 8 == 0), odd kernel widths (pairs of positions stay in one row), and 64+ output
 * channels. 3x3: BM 64, both warpgroups share the weight rows and split the positions (tw = 64:
 * 7 rows of pitch 66, 2 x 232 positions, 448 kept). Per 32-channel chunk that moves 37 KB of
 * weights and 37 KB of raw input for 17 MFLOP, where BM 128 (the warpgroups split the rows, 3 rows,
 * 200 positions) moves 74 + 20 KB for 15 MFLOP: the weights are read once per tap, the input tile
 * serves all taps. H100 80GB HBM3 (bench/results/vae-wgmma-2026-11-26.md): BM 64 1.0-1.5x faster
 * on every 3x3 shape of the decoders (41.3 vs 48.6 ms in all). 1x1: BM 128 (4 rows, 256 positions), 1.2-1.4x faster there (the input dominates).
 * (`force`: bench/gpu/conv-variants.ts.)
 */
export function wgTile(d: ConvDescriptor, force?: { bm?: 64 | 128 }): WgTile | undefined {
  const tw = tileWidth(d.wo);
  const staged = d.xType === '__nv_bfloat16' && (d.up === 1 || d.up === 2) && d.ws % 8 === 0 && (tw / d.up) % 8 === 0;
  if (!staged || d.wType !== '__nv_bfloat16' || d.ci % 8 !== 0 || d.kw % 2 !== 1 || d.co < 64) return undefined;
  const bm = force?.bm ?? (d.kh * d.kw === 1 ? 128 : 64);
  const wgm = bm / 64, split = 2 / wgm;
  const pws = tw + d.kw - 1;
  const th = Math.min(Math.floor((256 * split) / pws), d.ho);
  if (th < 1) return undefined;
  const ntot = Math.ceil((th * pws) / (8 * split)) * 8 * split;
  const pxs = Math.ceil((ntot + (d.kh - 1) * pws + d.kw - 1) / 8) * 8;
  return { bm, wgm, nwg: ntot / split, th, tw, pws, pxs };
}

/** wgmma m64nNk16, bf16 operands from shared memory (K-major both), fp32 accumulators: the rendered
 * function over an accumulator array (its operand list depends on N). */
function wgmmaFunction(n: number): { name: string; source: string } {
  const name = `dc_cw_wgmma_n${n}`;
  const regs = n / 2;
  const dl = Array.from({ length: regs }, (_, i) => `%${i}`).join(', ');
  const outs = Array.from({ length: regs }, (_, i) => `"+f"(d[${i}])`).join(', ');
  const guard = name.toUpperCase();
  const source = [
    `#if DC_CONVW_WGMMA && !defined(${guard})`, `#define ${guard}`,
    `static __device__ __forceinline__ void ${name}(float* d, uint64_t da, uint64_t db) {`,
    // scale-d is a predicate: always accumulate (the accumulators start at zero).
    `  asm volatile("{\\n.reg .pred p;\\nsetp.ne.b32 p, %${regs + 2}, 0;\\nwgmma.mma_async.sync.aligned.m64n${n}k16.f32.bf16.bf16 {${dl}}, %${regs}, %${regs + 1}, p, 1, 1, 0, 0;\\n}\\n"`,
    `               : ${outs}`,
    `               : "l"(da), "l"(db), "r"(1));`,
    '}', '#endif',
  ].join('\n');
  return { name, source };
}

/** The template's paths: activations copied as raw 16-byte rows (bf16, rows in whole vectors;
 * `rstride` the elements between channel blocks of the raw tile, an odd number of 16-byte units),
 * weights by cp.async (bf16, Ci % 8 == 0). */
function paths(d: ConvDescriptor): { staged: boolean; wAsync: boolean; rstride: number } {
  const rw = d.tile.tw / d.up, ph = d.tile.th + d.kh - 1;
  const staged = d.xType === '__nv_bfloat16' && (d.up === 1 || d.up === 2) && d.ws % 8 === 0 && rw % 8 === 0;
  const units = (ph * rw) / 8;
  return { staged, wAsync: d.wType === '__nv_bfloat16' && d.ci % 8 === 0, rstride: (units + (units % 2 === 0 ? 1 : 2)) * 8 };
}

/** Shared memory: two stages of weights [taps][BM][32] and input tile [(TH+kh-1)(TW+kw-1)][32],
 * the raw tile [32][rstride] on the bf16 path (all bf16); reused by the epilogue for the fp32
 * output tile [BM][TH*TW + 8]. */
export function convSharedBytes(d: ConvDescriptor): number {
  if (d.wg) {
    const { bm, th, tw, pxs } = d.wg;
    return Math.max(2 * d.kh * d.kw * bm * 64 + 2 * pxs * 64 + 2 * 32 * wgRstride(d), bm * (th * tw + 8) * 4);
  }
  const { bm, th, tw } = d.tile;
  const { staged, rstride } = paths(d);
  const mainLoop = 2 * 2 * (d.kh * d.kw * bm * 32 + (th + d.kh - 1) * (tw + d.kw - 1) * 32) + (staged ? 2 * 32 * rstride : 0);
  return Math.max(mainLoop, bm * (th * tw + 8) * 4);
}

/** Raw-tile channel stride of the warpgroup kernel: an odd number of 16-byte units. */
function wgRstride(d: ConvDescriptor): number {
  const units = ((d.wg!.th + d.kh - 1) * d.wg!.tw) / d.up / 8;
  return (units + (units % 2 === 0 ? 1 : 2)) * 8;
}

/** `variant` (bench/gpu/conv-variants.ts only): wLate issues the next weights after the MMAs complete. */
export function renderWgmma(d: ConvDescriptor, variant: { wLate?: boolean } = {}): RenderedKernel {
  const wg = d.wg!;
  const mma = wgmmaFunction(wg.nwg);
  const wLate = !!variant.wLate;
  const name = `conv_${jsonHash16({ d, t: TEMPLATE_WG(), p: PREAMBLE(), ...(wLate ? { wLate } : {}) })}`;
  const source = env.render('conv_wgmma.cu.njk', {
    name, ...d, ...wg, bias: !!d.bType, bT: d.bType ?? '', yT: d.yType, rstride: wgRstride(d), wgmmaName: mma.name, wgmmaSource: mma.source, wLate,
  });
  const tiles = d.n * Math.ceil(d.co / wg.bm) * Math.ceil(d.ho / wg.th) * Math.ceil(d.wo / wg.tw);
  return { name, source, hot: true, grid: tiles, block: THREADS, sharedBytes: convSharedBytes(d) };
}

export function renderConv(d: ConvDescriptor): RenderedKernel {
  if (d.wg) return renderWgmma(d);
  const name = `conv_${jsonHash16({ d, t: TEMPLATE(), p: PREAMBLE() })}`;
  const { staged, wAsync, rstride } = paths(d);
  const source = env.render('conv.cu.njk', {
    name, threads: THREADS, ...d, ...d.tile, bias: !!d.bType, xT: d.xType, wT: d.wType, bT: d.bType ?? '', yT: d.yType, staged, wAsync, rstride,
  });
  const tiles = d.n * Math.ceil(d.co / d.tile.bm) * Math.ceil(d.ho / d.tile.th) * Math.ceil(d.wo / d.tile.tw);
  // fp32 fixtures (element-by-element loads) are test paths, not hot ones.
  return { name, source, hot: staged && wAsync, grid: tiles, block: THREADS, sharedBytes: convSharedBytes(d) };
}
