/**
 * render(descriptor) -> CUDA source: pure, and identical descriptors render identically. The kernel
 * name is a hash of the descriptor and the template text, so it doubles as the cache key of the
 * rendered function. Skeletons live in templates/*.njk (nunjucks); the per-op maths comes from
 * snippets.ts; the shared preamble (templates/preamble.cuh) opens every translation unit.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { ROOT } from '../paths.ts';
import type { CudaType, ElementwiseDescriptor, EwInput, EwInstr } from './elementwise.ts';
import { snippet } from './snippets.ts';

const TEMPLATES = join(ROOT, 'templates');
const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(TEMPLATES), { autoescape: false, throwOnUndefined: true });
const templateText = (file: string) => readFileSync(join(TEMPLATES, file), 'utf8');

export const PREAMBLE = () => templateText('preamble.cuh');

const C_TYPE: Record<CudaType, string> = {
  float: 'float', double: 'double', bf16: '__nv_bfloat16', half: '__half', fp8e4m3: '__nv_fp8_e4m3',
  int64: 'long long', int32: 'int', bool: 'bool', uint8: 'uint8_t',
};

export interface RenderedKernel {
  name: string;
  source: string;
  /** Launch geometry and the dynamic shared memory the kernel needs. */
  grid: number;
  block: number;
  sharedBytes: number;
}

const hash = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);

/** Flat offset of input k at (row, col): its broadcast strides over the row's mixed radix. */
function offsetLines(inputs: EwInput[]): string[] {
  return inputs.map((inp, k) => {
    const terms: string[] = [];
    let rest = 'row';
    const dims = inp.rowDims;
    for (let d = dims.length - 1; d >= 0; d--) {
      const { size, stride } = dims[d];
      const idx = d === 0 ? rest : `(${rest} % ${size}LL)`;
      if (stride !== 0 && size !== 1) terms.push(`${idx} * ${stride}LL`);
      rest = d === 0 ? rest : `(${rest} / ${size}LL)`;
    }
    return `const long long off${k} = ${terms.length ? terms.join(' + ') : '0LL'};`;
  });
}

function loadExpr(inputs: EwInput[], ref: string, col: string): string {
  const k = Number(ref.slice(2));
  const inp = inputs[k];
  const c = inp.colStride === 0 ? '0LL' : col;
  return `dc_load<T>(in${k}, off${k} + ${c})`;
}

function params(d: ElementwiseDescriptor): string[] {
  return [
    ...d.inputs.map((inp, k) => `const ${C_TYPE[inp.type]}* __restrict__ in${k}`),
    ...d.outputs.map((o, k) => `${C_TYPE[o.type]}* __restrict__ out${k}`),
  ];
}

function renderFlat(d: ElementwiseDescriptor, name: string): string {
  const value = (ref: string) => (ref.startsWith('in') ? loadExpr(d.inputs, ref, 'col') : ref);
  const body: string[] = [];
  for (const ins of d.program) {
    if (ins.op === 'SwiGLU') {
      const k = Number(ins.args[0].slice(2));
      const a = `dc_load<T>(in${k}, off${k} + col)`, b = `dc_load<T>(in${k}, off${k} + col + ${d.cols}LL)`;
      body.push(`const T ${ins.out} = (${a}) * dc_sigmoid(${a}) * (${b});`);
    } else if (ins.op === 'RoPE') {
      body.push(ropeLine(d, ins, value, 'col'));
    } else {
      body.push(`const T ${ins.out} = ${snippet(ins, ins.args.map((a) => (a ? value(a) : '')))};`);
    }
  }
  const stores = d.outputs.map((_, k) => `dc_store<T>(out${k}, idx, ${value(d.results[k])});`);
  return env.render('elementwise_flat.cu.njk', { name, threads: d.threads, params: params(d), compute: d.compute, rows: d.rows, cols: d.cols, rowOffsets: offsetLines(d.inputs), body, stores });
}

/** RoPE's rotated partner: (x0, x1) -> (-x1, x0) for interleaved pairs, halves otherwise. */
function ropeLine(d: ElementwiseDescriptor, ins: EwInstr, value: (ref: string, col?: string) => string, col: string): string {
  const [x, cos, sin] = ins.args;
  const interleaved = (ins.attrs.style ?? 'interleaved') === 'interleaved';
  const half = d.cols / 2;
  const partnerCol = interleaved ? `(${col} ^ 1LL)` : `(${col} < ${half}LL ? ${col} + ${half}LL : ${col} - ${half}LL)`;
  const sign = interleaved ? `((${col} & 1LL) ? T(1) : T(-1))` : `(${col} < ${half}LL ? T(-1) : T(1))`;
  const at = (ref: string, c: string) => (ref.startsWith('in') ? loadExpr(d.inputs, ref, c) : `${ref}_row[${c}]`);
  return `const T ${ins.out} = ${at(x, col)} * ${value(cos)} + ${sign} * ${at(x, partnerCol)} * ${value(sin)};`;
}

interface RowStep { comment: string; lines: string[] }

function renderRow(d: ElementwiseDescriptor, name: string): { source: string; buffers: number } {
  // Buffer allocation by liveness: each instruction's row result gets a shared-memory row, freed
  // after its last use (scalar per-row results such as a Quantize scale live in registers).
  const lastUse = new Map<string, number>();
  d.program.forEach((ins, i) => ins.args.forEach((a) => a && lastUse.set(a, i)));
  d.results.forEach((r) => lastUse.set(r, d.program.length));
  const free: number[] = [];
  let buffers = 0;
  const slot = new Map<string, number>();
  const steps: RowStep[] = [];
  const cols = `${d.cols}LL`;
  const at = (ref: string, c: string) => (ref.startsWith('in') ? loadExpr(d.inputs, ref, c) : slot.has(ref) ? `buf[${slot.get(ref)! * d.cols}LL + ${c}]` : ref);
  const loop = (line: string) => `for (long long c = tid; c < ${cols}; c += blockDim.x) { ${line} }`;
  d.program.forEach((ins, i) => {
    const out = free.pop() ?? buffers++;
    slot.set(ins.out, out);
    const dst = `buf[${out * d.cols}LL + c]`;
    const lines: string[] = [];
    const a = (k: number, c = 'c') => at(ins.args[k], c);
    switch (ins.op) {
      case 'LayerNormalization': case 'RMSNormalization': {
        const eps = Number(ins.attrs.epsilon ?? 1e-5);
        const centered = ins.op === 'LayerNormalization';
        lines.push(`T s_${i} = T(0); ${loop(`s_${i} += ${a(0)};`)}`);
        lines.push(centered ? `const T mean_${i} = dc_block_sum(s_${i}, scratch) / T(${d.cols});` : `const T mean_${i} = T(0);`);
        lines.push(`T v_${i} = T(0); ${loop(`const T z = ${a(0)} - mean_${i}; v_${i} += z * z;`)}`);
        lines.push(`const T r_${i} = T(1) / sqrt(dc_block_sum(v_${i}, scratch) / T(${d.cols}) + T(${eps}));`);
        const w = ins.args[1] ? ` * ${a(1)}` : '', b = ins.args[2] ? ` + ${a(2)}` : '';
        lines.push(loop(`${dst} = (${a(0)} - mean_${i}) * r_${i}${w}${b};`));
        break;
      }
      case 'Softmax':
        lines.push(`T m_${i} = -INFINITY; ${loop(`m_${i} = dc_max(m_${i}, ${a(0)});`)}`);
        lines.push(`const T mx_${i} = dc_block_max(m_${i}, scratch);`);
        lines.push(`T s_${i} = T(0); ${loop(`s_${i} += exp(${a(0)} - mx_${i});`)}`);
        lines.push(`const T sum_${i} = dc_block_sum(s_${i}, scratch);`);
        lines.push(loop(`${dst} = exp(${a(0)} - mx_${i}) / sum_${i};`));
        break;
      case 'Quantize': {
        // Per-token FP8: scale = amax / 448 (fp32), q = e4m3(x / scale) saturating; bf16: round.
        if (ins.attrs.format === 'bf16') {
          lines.push(loop(`${dst} = dc_round_bf16(${a(0)});`), `const T ${ins.out}_1 = T(1);`);
        } else {
          lines.push(`T am_${i} = T(0); ${loop(`am_${i} = dc_max(am_${i}, fabs(${a(0)}));`)}`);
          lines.push(`const T amax_${i} = dc_block_max(am_${i}, scratch);`);
          lines.push(`const T ${ins.out}_1 = amax_${i} > T(0) ? T(float(amax_${i}) / 448.f) : T(1);`);
          lines.push(loop(`${dst} = dc_round_e4m3(${a(0)} / ${ins.out}_1);`));
        }
        break;
      }
      case 'SwiGLU': {
        const k = Number(ins.args[0].slice(2));
        lines.push(loop(`const T g = dc_load<T>(in${k}, off${k} + c); ${dst} = g * dc_sigmoid(g) * dc_load<T>(in${k}, off${k} + c + ${cols});`));
        break;
      }
      case 'RoPE': {
        const half = d.cols / 2, interleaved = (ins.attrs.style ?? 'interleaved') === 'interleaved';
        const partner = interleaved ? '(c ^ 1LL)' : `(c < ${half}LL ? c + ${half}LL : c - ${half}LL)`;
        const sign = interleaved ? '((c & 1LL) ? T(1) : T(-1))' : `(c < ${half}LL ? T(-1) : T(1))`;
        lines.push(loop(`${dst} = ${a(0)} * ${a(1)} + ${sign} * ${at(ins.args[0], partner)} * ${a(2)};`));
        break;
      }
      default:
        lines.push(loop(`${dst} = ${snippet(ins, ins.args.map((x) => (x ? at(x, 'c') : '')))};`));
    }
    steps.push({ comment: `${ins.out} = ${ins.op}(${ins.args.join(', ')})`, lines });
    for (const arg of new Set(ins.args)) if (arg && lastUse.get(arg) === i && slot.has(arg)) free.push(slot.get(arg)!);
  });
  // Stores: row values element-wise, per-row scalars by thread 0.
  const stores: string[] = [];
  d.outputs.forEach((o, k) => {
    const ref = d.results[k];
    if (o.perRow) stores.push(`if (tid == 0) dc_store<T>(out${k}, row, ${ref});`);
    else stores.push(loop(`dc_store<T>(out${k}, row * ${cols} + c, ${at(ref, 'c')});`));
  });
  steps.push({ comment: 'outputs', lines: stores });
  const source = env.render('elementwise_row.cu.njk', { name, threads: d.threads, params: params(d), compute: d.compute, rowOffsets: offsetLines(d.inputs), steps });
  return { source, buffers };
}

/** Renders one element-wise kernel (without the preamble; renderUnit adds it once per unit). */
export function renderElementwise(d: ElementwiseDescriptor): RenderedKernel {
  const template = d.mode === 'flat' ? 'elementwise_flat.cu.njk' : 'elementwise_row.cu.njk';
  // The name hashes the structure only (not the graph's value names), so equal kernels share it.
  const structure = { ...d, inputs: d.inputs.map(({ name: _, ...rest }) => rest), outputs: d.outputs.map(({ name: _, ...rest }) => rest) };
  const name = `ew_${hash({ structure, t: templateText(template), p: PREAMBLE() })}`;
  if (d.mode === 'flat') {
    const total = d.rows * d.cols;
    return { name, source: renderFlat(d, name), grid: Math.max(1, Math.min(Math.ceil(total / d.threads), 132 * 16)), block: d.threads, sharedBytes: 0 };
  }
  const { source, buffers } = renderRow(d, name);
  return { name, source, grid: d.rows, block: d.threads, sharedBytes: buffers * d.cols * (d.compute === 'double' ? 8 : 4) };
}

/** One translation unit: the preamble once, then the kernels (deduplicated by name). */
export function renderUnit(kernels: readonly RenderedKernel[]): string {
  const seen = new Set<string>();
  const bodies = kernels.filter((k) => !seen.has(k.name) && seen.add(k.name)).map((k) => k.source);
  return `${PREAMBLE()}\n${bodies.join('\n')}`;
}
