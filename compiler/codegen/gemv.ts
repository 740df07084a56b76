/**
 * The weight-only FP8 GEMV: dc.WQLinear(x, wq, ws[, b]) (a one-row GEMM with a large weight,
 * passes/quantize/policy.ts `oneRowGemms`) as one launch of our own kernel, rendered from
 * templates/gemv_fp8.cu.njk. At M = 1..4 the GEMM is a stream over its weight: no tensor cores,
 * no cuBLASLt (whose FP8 GEMMs quantize the activation too and are tuned for large M).
 *
 *   y[m, n] = ws[n] · Σ_k x[m, k] · float(wq[n, k])  (+ b[n])    fp32 products and accumulation
 *
 * Physical operands: wq is weights.bin's fp8 entry (e4m3 codes [N, K], K contiguous: the 'nk'
 * layout whatever the graph's transB), ws its fp32 scales [N]; x is read in its graph type (bf16,
 * f16 or f32) and y written in WQLinear's `to` type. Launch arguments: (x, wq, ws[, b], y).
 *
 * Geometry: 256 threads, x kept in shared memory as fp32 (M·K·4 bytes, padded to 512-element
 * groups); each warp streams `rows` consecutive weight rows at a time with `rows`·`slice` 16-byte
 * loads in flight per lane (at most 12: 48 registers), grid-stride over row groups from at most
 * 4 CTAs per SM of an H100. Needs K a multiple of 16 (16-byte rows), which the policy checks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { fail } from '../errors.ts';
import type { DType } from '../ir/dtype.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { ROOT } from '../paths.ts';
import { jsonHash16 } from '../hash.ts';
import { H100_SMS } from './device.ts';
import { PREAMBLE, type RenderedKernel } from './render.ts';

const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(ROOT, 'templates')), { autoescape: false, throwOnUndefined: true });
const C_TYPE: Partial<Record<DType, string>> = { bfloat16: '__nv_bfloat16', float16: '__half', float32: 'float' };
const THREADS = 256;
/** 16-byte weight loads in flight per lane (rows x slice). */
const IN_FLIGHT = 12;
/** Largest M the kernel takes (its accumulators are M x rows registers). */
export const GEMV_MAX_M = 4;

export interface GemvDescriptor {
  kind: 'gemv-fp8';
  m: number; n: number; k: number;
  xType: string; outType: string; biasType: string | null;
}

export function gemvDescriptor(graph: Graph, node: Node): GemvDescriptor {
  const where = `WQLinear kernel -> ${node.outputs[0]}`;
  const type = (v: string) => graph.types.get(v) as unknown as { dtype: DType; shape: number[] };
  const x = type(node.inputs[0]), wq = type(node.inputs[1]), y = type(node.outputs[0]);
  const transB = node.attrs.transB === 1;
  const k = x.shape.at(-1)!, m = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const n = wq.shape[transB ? 0 : 1];
  if (wq.shape[transB ? 1 : 0] !== k) fail(where, `a weight with K = ${k}`, `[${wq.shape}]`);
  if (k % 16) fail(where, 'K a multiple of 16 (16-byte weight rows)', `K = ${k}`);
  if (m < 1 || m > GEMV_MAX_M) fail(where, `1 to ${GEMV_MAX_M} rows of x`, `${m}`);
  const ct = (t: DType, what: string) => C_TYPE[t] ?? fail(where, `${what} of type bfloat16, float16 or float32`, t);
  const bias = node.inputs[3] ? type(node.inputs[3]) : undefined;
  return { kind: 'gemv-fp8', m, n, k, xType: ct(x.dtype, 'x'), outType: ct(y.dtype, 'an output'), biasType: bias ? ct(bias.dtype, 'a bias') : null };
}

/**
 * Variants (measured in bench/results/fp8-gemv-2026-11-26.md): `inFlight` 16-byte loads per lane;
 * `convert` 'cvt' (the e4m3x2 -> f16x2 instruction, then f16 -> f32) or 'bits' (the code's bits
 * moved into a float's; x stored times 2^64 and the scale times 2^56: the same products while
 * |x| stays within 2^-61 .. 2^64); `minBlocks` CTAs per SM asked of ptxas.
 */
export interface GemvTuning { inFlight: number; convert: 'cvt' | 'bits'; minBlocks: number }
export const GEMV_TUNING: GemvTuning = { inFlight: IN_FLIGHT, convert: 'cvt', minBlocks: 2 };

/** The launch geometry and the template's constants for a descriptor. */
export function gemvGeometry(d: GemvDescriptor, tuning: GemvTuning = GEMV_TUNING) {
  const IN_FLIGHT = tuning.inFlight;
  const chunks = d.k / 16; // 16-byte chunks per weight row
  const perLane = Math.ceil(chunks / 32);
  const slice = Math.min(perLane, IN_FLIGHT);
  const slices = Math.ceil(perLane / slice);
  const rows = Math.max(1, Math.min(4, Math.floor(IN_FLIGHT / slice)));
  const groups = Math.ceil(d.n / rows);
  const warps = THREADS / 32;
  const xRow = Math.ceil(chunks / 32) * 512; // floats per row of x in shared memory
  const grid = Math.max(1, Math.min(Math.ceil(groups / warps), H100_SMS * 4));
  return { chunks, slice, slices, rows, groups, xRow, grid, threads: THREADS, sharedBytes: d.m * xRow * 4 };
}

export function renderGemv(d: GemvDescriptor, tuning: GemvTuning = GEMV_TUNING): RenderedKernel {
  const g = gemvGeometry(d, tuning);
  const name = `gemv8_${jsonHash16({ d, tuning, t: readFileSync(join(ROOT, 'templates', 'gemv_fp8.cu.njk'), 'utf8'), p: PREAMBLE() })}`;
  const source = env.render('gemv_fp8.cu.njk', { ...d, ...g, name, minBlocks: tuning.minBlocks, convert: tuning.convert });
  return { name, source, hot: true, grid: g.grid, block: g.threads, sharedBytes: g.sharedBytes };
}
