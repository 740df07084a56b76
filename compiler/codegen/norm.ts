/**
 * Norm kernels over channels: the FusedKernels fuse-norms labels 'group-norm' and 'channel-norm'
 * become a NormDescriptor — the statistics' geometry, the operands, and the element-wise tail as
 * a program over the snippet table (snippets.ts) — rendered by templates/norm_group.cu.njk and
 * templates/norm_channel.cu.njk.
 *
 *   group-norm    x [N, C, S...] in groups of C/G channels (contiguous spans of L = C/G * S):
 *                 a cluster of CTAs per (n, group) sums (x - pivot) and its square over its share
 *                 of the span, the partial sums are combined through distributed shared memory,
 *                 then each CTA normalises its share and runs the tail (affine, SiLU) on the way
 *                 out: two reads and one write of x.
 *   channel-norm  x [N, C, S...], the RMS over C per pixel (Qwen-Image's ReduceL2 norm): a CTA
 *                 holds a block of pixels x all channels in registers (channels split over
 *                 threads, combined in shared memory), so x is read once and written once.
 *
 * Operands of the tail are scalars (loaded once) or per-channel vectors (loaded per channel).
 * Statistics are fp32.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { fail } from '../errors.ts';
import { type DType, dtypeFromOnnx } from '../ir/dtype.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { ROOT } from '../paths.ts';
import { operandClass } from '../../passes/fuse-norms.ts';
import type { CudaType, EwInstr } from './elementwise.ts';
import { PREAMBLE, type RenderedKernel } from './render.ts';
import { snippet } from './snippets.ts';
import { jsonHash16 } from '../hash.ts';

export interface NormOperand { type: string; role: 'x' | 'scalar' | 'channel' | 'group' }

export interface NormDescriptor {
  kind: 'group-norm' | 'channel-norm';
  n: number; c: number; s: number;
  /** group-norm: groups, epsilon, and the InstanceNorm scale/bias operands. */
  groups: number; eps: number; scale: number; bias: number;
  /** channel-norm: Clip operands of the norm (-1: none). */
  clipMin: number; clipMax: number;
  /** The kernel's parameters, in node-input order, then the output. */
  operands: NormOperand[];
  x: number;
  outType: string;
  /** The tail: each instruction reads 'v' (the running value) and operands 'inK'. */
  program: EwInstr[];
}

const C_TYPE: Partial<Record<DType, string>> = { bfloat16: '__nv_bfloat16', float32: 'float', float16: '__half' };
const CUDA: Partial<Record<DType, CudaType>> = { bfloat16: 'bf16', float32: 'float', float16: 'half', float64: 'double' };
const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(ROOT, 'templates')), { autoescape: false, throwOnUndefined: true });
const THREADS = 256;

export const isNormKernel = (node: Node) => node.domain === 'dc' && node.op === 'FusedKernel' && (node.attrs.kernel === 'group-norm' || node.attrs.kernel === 'channel-norm');

export function normDescriptor(graph: Graph, node: Node): NormDescriptor {
  const kind = node.attrs.kernel as NormDescriptor['kind'];
  const where = `${kind} kernel -> ${node.outputs[0]}`;
  const t = (v: string) => graph.types.get(v) as unknown as { dtype: DType; shape: number[] };
  const ctype = (v: string) => C_TYPE[t(v).dtype] ?? fail(where, 'a bf16, fp16 or fp32 operand', `${t(v).dtype} '${v}'`);
  const body = node.body!;
  const formal = (v: string) => body.inputs.indexOf(v);
  const out = t(node.outputs[0]).shape;
  const [n, c] = out;
  const s = out.slice(2).reduce((a, b) => a * b, 1);
  const operands: NormOperand[] = node.inputs.map((v) => ({ type: ctype(v), role: operandClass(t(v).shape, out) ?? 'x' }));
  let x = -1, start: string, scale = -1, bias = -1, groups = 0, eps = 0, clipMin = -1, clipMax = -1;
  const nodes = body.nodes.filter((b) => b.op !== 'Constant');
  let k = 0;
  if (kind === 'group-norm') {
    const [r1, inorm, r2] = nodes;
    if (r1?.op !== 'Reshape' || inorm?.op !== 'InstanceNormalization' || r2?.op !== 'Reshape') fail(where, 'Reshape, InstanceNormalization, Reshape', nodes.map((b) => b.op).join(', '));
    x = formal(r1.inputs[0]);
    scale = formal(inorm.inputs[1]); bias = formal(inorm.inputs[2]);
    groups = bodyGroups(node, r1, c);
    eps = (inorm.attrs.epsilon as number | undefined) ?? 1e-5;
    operands[scale].role = 'group'; operands[bias].role = 'group';
    start = r2.outputs[0];
    k = 3;
  } else {
    let i = 0;
    if (nodes[0].op === 'Cast') {
      const to = dtypeFromOnnx(nodes[0].attrs.to as number);
      if (to !== 'float32') fail(where, 'a Cast to float32 before the norm', String(to));
      i = 1;
    }
    const red = nodes[i], clip = nodes[i + 1]?.op === 'Clip' ? nodes[i + 1] : undefined, div = nodes[i + (clip ? 2 : 1)];
    if (red?.op !== 'ReduceL2' || div?.op !== 'Div') fail(where, '[Cast], ReduceL2, [Clip], Div', nodes.map((b) => b.op).join(', '));
    x = formal(i ? nodes[0].inputs[0] : red.inputs[0]);
    if (clip) { clipMin = clip.inputs[1] ? formal(clip.inputs[1]) : -1; clipMax = clip.inputs[2] ? formal(clip.inputs[2]) : -1; }
    start = div.outputs[0];
    k = i + (clip ? 3 : 2);
  }
  if (x < 0) fail(where, 'the normalised value among the inputs', 'none');
  operands[x].role = 'x';
  const stray = operands.findIndex((o, i) => o.role === 'x' && i !== x);
  if (stray >= 0) fail(where, 'tail operands that are scalars or per-channel vectors', `'${node.inputs[stray]}' [${t(node.inputs[stray]).shape}]`);
  if (out.length < 3 || t(node.inputs[x]).shape.join() !== out.join()) fail(where, `an input of the output's shape [${out}]`, `[${t(node.inputs[x]).shape}]`);
  // The tail: a chain from `start`.
  const program: EwInstr[] = [];
  let current = start;
  for (const b of nodes.slice(k)) {
    const args = b.inputs.map((v) => (v === current ? 'v' : `in${formal(v)}`));
    if (args.some((a) => a === 'in-1') || !args.includes('v')) fail(where, 'a tail chained on the normalised value', `${b.op}(${b.inputs.join(', ')})`);
    const attrs: Record<string, number | string> = {};
    for (const [key, val] of Object.entries(b.attrs)) if (typeof val === 'number' || typeof val === 'string') attrs[key] = val;
    if (b.op === 'Cast') attrs.to = CUDA[dtypeFromOnnx(b.attrs.to as number)!] ?? fail(where, 'a float Cast', String(b.attrs.to));
    program.push({ op: b.op, out: 'v', args, attrs });
    current = b.outputs[0];
  }
  if (current !== body.outputs[0]) fail(where, `the tail to end at the output '${body.outputs[0]}'`, current);
  return { kind, n, c, s, groups, eps, scale, bias, clipMin, clipMax, operands, x, outType: ctype(node.outputs[0]), program };
}

/** Groups: the middle dim of the grouping Reshape's target [N, G, L] (a Constant in the body). */
function bodyGroups(node: Node, r1: Node, c: number): number {
  const shape = node.body!.nodes.find((b) => b.op === 'Constant' && b.outputs[0] === r1.inputs[1])?.attrs.value as { toNumbers(): number[] } | undefined;
  const g = shape?.toNumbers()[1];
  if (!g || c % g) fail(`group-norm kernel -> ${node.outputs[0]}`, 'a grouping Reshape to [N, G, L] with G dividing C', String(g));
  return g;
}

/** The tail as CUDA lines over `v` (the running value); operands by role. */
function tailLines(d: NormDescriptor, operand: (k: number) => string): string[] {
  return d.program.map((ins) => `v = ${snippet(ins, ins.args.map((a) => (a === 'v' ? 'v' : operand(Number(a.slice(2))))))};`);
}

const hashName = (prefix: string, x: unknown) => `${prefix}_${jsonHash16(x)}`;

export function renderNorm(d: NormDescriptor): RenderedKernel {
  const template = d.kind === 'group-norm' ? 'norm_group.cu.njk' : 'norm_channel.cu.njk';
  const name = hashName(d.kind === 'group-norm' ? 'gn' : 'cn', { d, t: readFileSync(join(ROOT, 'templates', template), 'utf8'), p: PREAMBLE() });
  const params = [...d.operands.map((o, k) => `const ${o.type}* __restrict__ in${k}`), `${d.outType}* __restrict__ out`];
  const vec = d.s % 8 === 0 ? 8 : 1;
  // Scalars are loaded once; per-channel operands where the channel is known ("ch").
  const scalars = d.operands.flatMap((o, k) => (o.role === 'scalar' && k !== d.x ? [`const T p${k} = dc_load<T>(in${k}, 0);`] : []));
  const operand = (k: number) => (d.operands[k].role === 'channel' ? `dc_load<T>(in${k}, ch)` : `p${k}`);
  const tail = tailLines(d, operand);
  if (d.kind === 'group-norm') {
    const cg = d.c / d.groups, span = cg * d.s;
    // A cluster of up to 8 CTAs per (image, group) (32 groups -> 256 CTAs), each with at least 4
    // vectors per thread.
    let cl = 1;
    while (cl < 8 && span % (cl * 2 * vec) === 0 && span / (cl * 2) >= THREADS * vec * 4) cl *= 2;
    const source = env.render(template, {
      name, params, threads: THREADS, vec, n: d.n, c: d.c, s: d.s, groups: d.groups, span, cl, slice: span / cl, eps: d.eps,
      x: d.x, scale: d.scale, bias: d.bias, scalars, tail,
    });
    return { name, source, hot: true, grid: d.n * d.groups * cl, block: THREADS, sharedBytes: 0 };
  }
  // channel-norm: split C over `split` threads (a power of two, at most 6 channels each) so a
  // thread's channels x 8 pixels stay in registers.
  const split = [1, 2, 4, 8, 16, 32, 64, 128, 256].find((p) => d.c % p === 0 && d.c / p <= 6);
  if (!split) fail(`channel-norm kernel (${d.c} channels)`, 'a channel count that splits into at most 6 per thread', `${d.c}`);
  const pv = THREADS / split;
  const clip = d.clipMin >= 0 || d.clipMax >= 0
    ? snippet({ op: 'Clip', out: '', args: [], attrs: {} }, ['nrm', d.clipMin >= 0 ? `p${d.clipMin}` : '', d.clipMax >= 0 ? `p${d.clipMax}` : ''])
    : 'nrm';
  const source = env.render(template, {
    name, params, threads: THREADS, vec, n: d.n, c: d.c, s: d.s, split, cpt: d.c / split, pv, x: d.x, scalars, tail, clip,
  });
  return { name, source, hot: true, grid: Math.ceil((d.n * d.s) / vec / pv), block: THREADS, sharedBytes: 0 };
}
