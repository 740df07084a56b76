/**
 * NVFP4 activation quantization kernels: a standalone Quantize(x){format: nvfp4, axis: last} becomes
 * two launches rendered from templates/nvfp4_quantize.cu.njk, because the per-tensor global scale
 * needs the amax of the whole tensor before any 16-element block can be encoded:
 *
 *   amax    grid-stride max |x| per CTA -> partial maxima, kept in the tail of the scale buffer
 *   encode  each CTA reduces the partials (deterministic, no atomics, nothing to reset between
 *           runs), writes the global scale, encodes its blocks
 *
 * Physical layout of the two outputs (the IR holds decoded values; the kernels store codes):
 *   q      packed e2m1 [rows, cols/2], element 2i in the low nibble (as the weights in weights.bin)
 *   scale  e4m3 block-scale codes [rows, cols/16] row-major, then (16-byte aligned) the fp32 global
 *          scale, then the partial maxima; it fits in the buffer the memory plan gives the IR's
 *          fp32 [rows, cols/16] scale (4 bytes per block, the codes need 1).
 * The swizzled block-scale layout cuBLASLt's block-scaled FP4 GEMM reads is the GEMM's concern.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { fail } from '../errors.ts';
import type { DType } from '../ir/dtype.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { ROOT } from '../paths.ts';
import { NVFP4_BLOCK } from '../ops/quant.ts';
import { H100_SMS } from './device.ts';
import { PREAMBLE, type RenderedKernel } from './render.ts';
import { jsonHash16 } from '../hash.ts';

const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(ROOT, 'templates')), { autoescape: false, throwOnUndefined: true });
const IN_TYPE: Partial<Record<DType, string>> = { bfloat16: '__nv_bfloat16', float16: '__half', float32: 'float' };
const THREADS = 256;
const MAX_PARTIALS = 264; // 2 CTAs per SM of an H100 for the amax pass

export interface Nvfp4QuantizeDescriptor { kind: 'nvfp4-quantize'; inType: string; elements: number }

/** Whether `node` is an activation Quantize to NVFP4 these kernels implement. */
export function isNvfp4ActivationQuantize(graph: Graph, node: Node): boolean {
  if (node.domain !== 'dc' || node.op !== 'Quantize' || node.attrs.format !== 'nvfp4') return false;
  const rank = (graph.types.get(node.inputs[0]) as unknown as { shape: number[] }).shape.length;
  const axis = (node.attrs.axis as number | undefined) ?? -1;
  return axis === -1 || axis === rank - 1;
}

export function nvfp4QuantizeDescriptor(graph: Graph, node: Node): Nvfp4QuantizeDescriptor {
  const where = `Quantize (nvfp4) kernel -> ${node.outputs[0]}`;
  const x = graph.types.get(node.inputs[0]) as unknown as { dtype: DType; shape: number[] };
  const inType = IN_TYPE[x.dtype] ?? fail(where, 'a bfloat16, float16 or float32 input', x.dtype);
  const elements = x.shape.reduce((a, b) => a * b, 1);
  if (x.shape.at(-1)! % NVFP4_BLOCK) fail(where, `a last axis that is a multiple of ${NVFP4_BLOCK}`, `[${x.shape}]`);
  return { kind: 'nvfp4-quantize', inType, elements };
}

/** The scale buffer's tail: where the global scale and the partial maxima live, and how many partials. */
export function nvfp4ScaleLayout(elements: number) {
  const blocks = elements / NVFP4_BLOCK;
  const capacity = blocks * 4; // bytes the memory plan gives the fp32 [rows, cols/16] scale
  const globalOffset = Math.ceil(blocks / 16) * 16;
  const partialOffset = globalOffset + 16;
  const partials = Math.min(MAX_PARTIALS, Math.floor((capacity - partialOffset) / 4), Math.ceil(elements / 8 / THREADS));
  return { blocks, globalOffset, partialOffset, partials };
}

/** The two kernels, in launch order: amax, then encode. Arguments of both: (x, q, scale). */
export function renderNvfp4Quantize(d: Nvfp4QuantizeDescriptor): [RenderedKernel, RenderedKernel] {
  const { blocks, globalOffset, partialOffset, partials } = nvfp4ScaleLayout(d.elements);
  if (partials < 1) fail(`Quantize (nvfp4) of ${d.elements} elements`, 'room in the scale buffer for the global scale and the partial maxima (at least 192 elements)', `${d.elements}`);
  const base = `q4_${jsonHash16({ d, t: readFileSync(join(ROOT, 'templates', 'nvfp4_quantize.cu.njk'), 'utf8'), p: PREAMBLE() })}`;
  const vars = { threads: THREADS, inType: d.inType, vectors: d.elements / 8, blocks, globalOffset, partialOffset, partials };
  const kernel = (part: 'amax' | 'encode', grid: number): RenderedKernel => {
    const name = `${base}_${part}`;
    return { name, hot: true, source: env.render('nvfp4_quantize.cu.njk', { ...vars, part, name }), grid, block: THREADS, sharedBytes: 0 };
  };
  return [kernel('amax', partials), kernel('encode', Math.max(1, Math.min(Math.ceil(blocks / THREADS), H100_SMS * 8)))];
}
