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
import { type CudaType, type ElementwiseDescriptor, type EwInput, type EwInstr, ROW_TUNING, rowGeometry } from './elementwise.ts';
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
  /**
   * A hot kernel must not spill. Exempt: trigonometry (sin/cos of large arguments take a slow path
   * through local memory, reported as spills on sm_100a; these are the tiny timestep/RoPE-table
   * kernels) and row kernels over rows wider than 16K elements (register budget).
   */
  hot: boolean;
  /** Launch geometry and the dynamic shared memory the kernel needs. */
  grid: number;
  block: number;
  sharedBytes: number;
}

const hash = (x: unknown) => createHash('sha256').update(JSON.stringify(x)).digest('hex').slice(0, 16);

/** Flat offset of input k at (row, col): its broadcast strides over the row's mixed radix. */
function offsetLines(inputs: EwInput[], row = 'row', prefix = 'off'): string[] {
  return inputs.map((inp, k) => {
    const terms: string[] = [];
    let rest = row;
    const dims = inp.rowDims;
    for (let d = dims.length - 1; d >= 0; d--) {
      const { size, stride } = dims[d];
      const idx = d === 0 ? rest : `(${rest} % ${size}LL)`;
      if (stride !== 0 && size !== 1) terms.push(`${idx} * ${stride}LL`);
      rest = d === 0 ? rest : `(${rest} / ${size}LL)`;
    }
    return `const long long ${prefix}${k} = ${terms.length ? terms.join(' + ') : '0LL'};`;
  });
}

/** Input `ref` (in<k>) at column `col` of the row whose offset is `base` (default: this row's). */
function loadExpr(inputs: EwInput[], ref: string, col: string, base = `off${ref.slice(2)}`): string {
  const k = Number(ref.slice(2));
  const inp = inputs[k];
  const c = inp.colStride === 0 ? '0LL' : inp.colStride === 1 ? col : `${col} * ${inp.colStride}LL`;
  return `dc_load<T>(in${k}, ${base} + ${c})`;
}

function params(d: ElementwiseDescriptor): string[] {
  return [
    ...d.inputs.map((inp, k) => `const ${C_TYPE[inp.type]}* __restrict__ in${k}`),
    ...d.outputs.map((o, k) => `${C_TYPE[o.type]}* __restrict__ out${k}`),
  ];
}

/** Vectorised flat kernel: rows split into 8-element vectors, no per-element partner access. */
export const flatVectorisable = (d: ElementwiseDescriptor) => d.mode === 'flat' && d.cols % 8 === 0 && d.program.every((i) => i.op !== 'RoPE')
  && d.inputs.every((i) => i.vector || (i.colStride === 0 && !i.swiglu));

function renderFlatVec(d: ElementwiseDescriptor, name: string): string {
  const loads: string[] = [];
  const arr = new Map<string, string>();
  d.inputs.forEach((inp, k) => {
    if (inp.swiglu) {
      // SwiGLU reads both halves of a row twice as long as its output: gate at col, up at col + cols.
      loads.push(`T g${k}[8], u${k}[8]; dc_load8<T>(in${k}, off${k} + col0, g${k}); dc_load8<T>(in${k}, off${k} + col0 + ${d.cols}LL, u${k});`);
      return;
    }
    arr.set(`in${k}`, `a${k}[e]`);
    loads.push(inp.colStride === 0
      ? `T a${k}[8]; { const T s = dc_load<T>(in${k}, off${k}); for (int e = 0; e < 8; ++e) a${k}[e] = s; }`
      : `T a${k}[8]; dc_load8<T>(in${k}, off${k} + col0, a${k});`);
  });
  const value = (ref: string) => arr.get(ref) ?? ref;
  const body = d.program.map((ins) => {
    if (ins.op === 'SwiGLU') {
      const k = Number(ins.args[0].slice(2));
      return `const T ${ins.out} = g${k}[e] * dc_sigmoid(g${k}[e]) * u${k}[e];`;
    }
    return `const T ${ins.out} = ${snippet(ins, ins.args.map((a) => (a ? value(a) : '')))};`;
  });
  const declares = d.outputs.map((_, k) => `T r${k}[8];`);
  body.push(...d.outputs.map((_, k) => `r${k}[e] = ${value(d.results[k])};`));
  const stores = d.outputs.map((_, k) => `dc_store8<T>(out${k}, idx, r${k});`);
  return env.render('elementwise_flat_vec.cu.njk', { name, threads: d.threads, params: params(d), compute: d.compute, rows: d.rows, cols: d.cols, rowOffsets: offsetLines(d.inputs), loads, declares, body, stores });
}

function renderFlat(d: ElementwiseDescriptor, name: string): string {
  if (flatVectorisable(d)) return renderFlatVec(d, name);
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

/**
 * Row kernel, register resident: each thread owns 8-column (16-byte) vectors j·THREADS + t of the
 * row (or single columns when the row does not split into vectors), so accesses are coalesced and
 * vectorised; every row value is a register array; each input row is read from global memory once
 * and each output written once. Reductions are per-thread
 * partial sums then one block reduction. RoPE's partner element comes from the neighbouring lane
 * (interleaved pairs, by shuffle) or from a shared-memory copy of the row (halves).
 */
function renderRow(d: ElementwiseDescriptor, name: string): { source: string; sharedBytes: number; threads: number } {
  const tuning = d.row ?? ROW_TUNING;
  const { threads: T, vec: V, per: PV, exact } = rowGeometry(d.cols, tuning.vectorsPerThread);
  const N = PV * V; // elements per thread
  const steps: RowStep[] = [];
  const val = new Map<string, string>(); // ref -> register array (or scalar) name
  // Element loop: element i of this thread is column c.
  const loop = (body: string) => V === 1
    ? `#pragma unroll\n  for (int i = 0; i < ${PV}; ++i) { const long long c = (long long)i * ${T} + tid; ${exact ? '' : `if (c < ${d.cols}LL) `}{ ${body} } }`
    : `#pragma unroll\n  for (int i = 0; i < ${N}; ++i) { const long long c = ((long long)(i >> 3) * ${T} + tid) * 8 + (i & 7); { ${body} } }`;
  // Vector loop: vector j of this thread starts at column cb.
  const vloop = (body: string) => `#pragma unroll\n  for (int j = 0; j < ${PV}; ++j) { const long long cb = ((long long)j * ${T} + tid) * 8; ${body} }`;
  // Load every input once; inputs that are the same for every row (norm weights, modulation
  // vectors) are loaded before the row loop and stay in registers for all rows of the CTA. The
  // others are software-pipelined: the next row's loads are issued before this row's reductions,
  // so memory stays busy while the block reduces (arrays x<k> hold this row, n<k> the next).
  const invariant: string[] = [];
  const first: string[] = [];
  const prefetch: string[] = [];
  const rotate: string[] = [];
  const loadInto = (k: number, arr: string, base: string) => (d.inputs[k].vector && V === 8
    ? vloop(`dc_load8<T>(in${k}, ${base} + cb, &${arr}[j * 8]);`)
    : loop(`${arr}[i] = ${loadExpr(d.inputs, `in${k}`, 'c', base)};`));
  const nextOffsets = offsetLines(d.inputs, 'nrow', 'noff');
  const firstOffsets = offsetLines(d.inputs, '(long long)blockIdx.x', 'foff');
  d.inputs.forEach((inp, k) => {
    if (inp.swiglu) return; // read inside the SwiGLU step, a vector at a time (no row-long arrays)
    val.set(`in${k}`, `x${k}`);
    if (inp.rowDims.every((dim) => dim.stride === 0 || dim.size === 1)) {
      invariant.push(`T x${k}[${N}];`, loadInto(k, `x${k}`, '0LL'));
      return;
    }
    if (!tuning.prefetch) {
      steps.push({ comment: `input ${k}`, lines: [`T x${k}[${N}];`, loadInto(k, `x${k}`, `off${k}`)] });
      return;
    }
    invariant.push(`T x${k}[${N}];`);
    first.push(firstOffsets[k], loadInto(k, `x${k}`, `foff${k}`));
    if (V === 8 && inp.vector && (inp.type === 'bf16' || inp.type === 'half')) {
      // 2-byte elements: prefetch the raw 16-byte vectors (half the registers), unpack on rotation.
      prefetch.push(`uint4 n${k}[${PV}];`);
      prefetch.push(`if (nrow < ${d.rows}LL) { ${nextOffsets[k]}\n  ${vloop(`n${k}[j] = *reinterpret_cast<const uint4*>(in${k} + noff${k} + cb);`)} }`);
      rotate.push(`#pragma unroll\n  for (int j = 0; j < ${PV}; ++j) dc_unpack8<T>(in${k}, n${k}[j], &x${k}[j * 8]);`);
      return;
    }
    prefetch.push(`T n${k}[${N}];`);
    prefetch.push(`if (nrow < ${d.rows}LL) { ${nextOffsets[k]}\n  ${loadInto(k, `n${k}`, `noff${k}`)} }`);
    rotate.push(`#pragma unroll\n  for (int i = 0; i < ${N}; ++i) x${k}[i] = n${k}[i];`);
  });
  if (first.length) invariant.push(`if (blockIdx.x < ${d.rows}LL) {`, ...first, '}');
  if (prefetch.length) prefetch.unshift(`const long long nrow = row + gridDim.x;`);
  steps.push({ comment: 'next row\'s inputs (prefetch)', lines: prefetch });
  const at = (ref: string) => (val.has(ref) ? (val.get(ref)!.startsWith('s_') ? val.get(ref)! : `${val.get(ref)}[i]`) : ref);
  let sharedBytes = 0;
  d.program.forEach((ins, i) => {
    const v = `v${i}`;
    const lines = [`T ${v}[${N}];`];
    const a = (k: number) => at(ins.args[k]);
    switch (ins.op) {
      case 'LayerNormalization': case 'RMSNormalization': {
        const eps = Number(ins.attrs.epsilon ?? 1e-5);
        if (ins.op === 'LayerNormalization' && T <= 512) {
          // One reduction of (sum, sum of squares): variance = E[x²] - mean², in fp32.
          lines.push(`T p${i} = T(0), q${i} = T(0);`, loop(`const T z = ${a(0)}; p${i} += z; q${i} += z * z;`), `dc_block_sum2(p${i}, q${i}, scratch);`);
          lines.push(`const T mean${i} = p${i} / T(${d.cols});`, `const T var${i} = q${i} / T(${d.cols}) - mean${i} * mean${i};`);
          lines.push(`const T r${i} = T(1) / sqrt((var${i} > T(0) ? var${i} : T(0)) + T(${eps}));`);
        } else {
          if (ins.op === 'LayerNormalization') {
            lines.push(`T p${i} = T(0);`, loop(`p${i} += ${a(0)};`), `const T mean${i} = dc_block_sum(p${i}, scratch) / T(${d.cols});`);
          } else lines.push(`const T mean${i} = T(0);`);
          lines.push(`T q${i} = T(0);`, loop(`const T z = ${a(0)} - mean${i}; q${i} += z * z;`));
          lines.push(`const T r${i} = T(1) / sqrt(dc_block_sum(q${i}, scratch) / T(${d.cols}) + T(${eps}));`);
        }
        lines.push(loop(`${v}[i] = (${a(0)} - mean${i}) * r${i}${ins.args[1] ? ` * ${a(1)}` : ''}${ins.args[2] ? ` + ${a(2)}` : ''};`));
        break;
      }
      case 'Softmax':
        lines.push(`T m${i} = -INFINITY;`, loop(`m${i} = dc_max(m${i}, ${a(0)});`), `const T mx${i} = dc_block_max(m${i}, scratch);`);
        lines.push(`T p${i} = T(0);`, loop(`${v}[i] = exp(${a(0)} - mx${i}); p${i} += ${v}[i];`), `const T sum${i} = dc_block_sum(p${i}, scratch);`);
        lines.push(loop(`${v}[i] = ${v}[i] / sum${i};`));
        break;
      case 'Quantize':
        // Per-token FP8: scale = amax / 448 (fp32), q = e4m3(x / scale), saturating; bf16: round.
        if (ins.attrs.format === 'bf16') lines.push(loop(`${v}[i] = dc_round_bf16(${a(0)});`), `const T s_${i} = T(1);`);
        else {
          lines.push(`T am${i} = T(0);`, loop(`am${i} = dc_max(am${i}, fabs(${a(0)}));`), `const T amax${i} = dc_block_max(am${i}, scratch);`);
          lines.push(`const T s_${i} = amax${i} > T(0) ? T(float(amax${i}) / 448.f) : T(1);`, loop(`${v}[i] = dc_round_e4m3(${a(0)} / s_${i});`));
        }
        val.set(`${ins.out}_1`, `s_${i}`);
        break;
      case 'SwiGLU': {
        const k = Number(ins.args[0].slice(2));
        if (V === 8 && d.inputs[k].vector) {
          lines.push(vloop(`T g[8], u[8]; dc_load8<T>(in${k}, off${k} + cb, g); dc_load8<T>(in${k}, off${k} + cb + ${d.cols}LL, u);\n#pragma unroll\n  for (int e = 0; e < 8; ++e) ${v}[j * 8 + e] = g[e] * dc_sigmoid(g[e]) * u[e];`));
        } else {
          lines.push(loop(`const T g = dc_load<T>(in${k}, off${k} + c); ${v}[i] = g * dc_sigmoid(g) * dc_load<T>(in${k}, off${k} + c + ${d.cols}LL);`));
        }
        break;
      }
      case 'RoPE': {
        const interleaved = (ins.attrs.style ?? 'interleaved') === 'interleaved';
        if (interleaved && V === 8) {
          // Pairs (c, c ^ 1) sit in the same thread: element i ^ 1.
          lines.push(loop(`${v}[i] = ${a(0)} * ${a(1)} + ((c & 1LL) ? T(1) : T(-1)) * ${at(ins.args[0]).replace('[i]', '[i ^ 1]')} * ${a(2)};`));
        } else if (interleaved && exact && T % 2 === 0) {
          // c ^ 1 is the neighbouring lane's element i.
          lines.push(loop(`const T x = ${a(0)}; const T partner = __shfl_xor_sync(0xffffffffu, x, 1); ${v}[i] = x * ${a(1)} + ((c & 1LL) ? T(1) : T(-1)) * partner * ${a(2)};`));
        } else {
          const half = d.cols / 2;
          sharedBytes = Math.max(sharedBytes, d.cols * (d.compute === 'double' ? 8 : 4));
          const partner = interleaved ? '(c ^ 1LL)' : `(c < ${half}LL ? c + ${half}LL : c - ${half}LL)`;
          const sign = interleaved ? '((c & 1LL) ? T(1) : T(-1))' : `(c < ${half}LL ? T(-1) : T(1))`;
          lines.push('__syncthreads();', loop(`rowbuf[c] = ${a(0)};`), '__syncthreads();', loop(`${v}[i] = ${a(0)} * ${a(1)} + ${sign} * rowbuf[${partner}] * ${a(2)};`));
        }
        break;
      }
      default:
        lines.push(loop(`${v}[i] = ${snippet(ins, ins.args.map((x) => (x ? at(x) : '')))};`));
    }
    val.set(ins.out, v);
    steps.push({ comment: `${ins.out} = ${ins.op}(${ins.args.join(', ')})`, lines });
  });
  const stores: string[] = [];
  d.outputs.forEach((o, k) => {
    const ref = d.results[k];
    const arr = val.get(ref);
    if (o.perRow) stores.push(`if (tid == 0) dc_store<T>(out${k}, row, ${at(ref)});`);
    else if (V === 8 && arr && !arr.startsWith('s_')) stores.push(vloop(`dc_store8<T>(out${k}, row * ${d.cols}LL + cb, &${arr}[j * 8]);`));
    else stores.push(loop(`dc_store<T>(out${k}, row * ${d.cols}LL + c, ${at(ref)});`));
  });
  steps.push({ comment: 'outputs', lines: stores }, { comment: 'the prefetched row becomes this row', lines: rotate });
  const source = env.render('elementwise_row.cu.njk', { name, threads: T, params: params(d), compute: d.compute, rows: d.rows, invariant, rowOffsets: offsetLines(d.inputs), steps });
  return { source, sharedBytes, threads: T };
}

/** Renders one element-wise kernel (without the preamble; renderUnit adds it once per unit). */
export function renderElementwise(d: ElementwiseDescriptor): RenderedKernel {
  // Rows wider than 16K elements hold 32+ elements per thread per row value: with two live values
  // they exceed the register budget of a 1024-thread CTA and spill, accepted for now (text-encoder
  // MLPs; see bench/RESULTS.md). Trigonometry: see RenderedKernel.hot.
  const hot = !d.program.some((i) => i.op === 'Sin' || i.op === 'Cos') && !(d.mode === 'row' && d.cols > 16384);
  const template = d.mode === 'row' ? 'elementwise_row.cu.njk' : flatVectorisable(d) ? 'elementwise_flat_vec.cu.njk' : 'elementwise_flat.cu.njk';
  // The name hashes the structure only (not the graph's value names), so equal kernels share it.
  const structure = { ...d, inputs: d.inputs.map(({ name: _, ...rest }) => rest), outputs: d.outputs.map(({ name: _, ...rest }) => rest) };
  const name = `ew_${hash({ structure, t: templateText(template), p: PREAMBLE() })}`;
  if (d.mode === 'flat') {
    const work = (d.rows * d.cols) / (flatVectorisable(d) ? 8 : 1);
    return { name, hot, source: renderFlat(d, name), grid: Math.max(1, Math.min(Math.ceil(work / d.threads), 132 * 16)), block: d.threads, sharedBytes: 0 };
  }
  const { source, sharedBytes, threads } = renderRow(d, name);
  // A persistent grid: enough CTAs to fill the GPU (132 SMs on an H100, up to 2048 threads each),
  // each looping over rows, so row-invariant inputs are read once per CTA.
  return { name, hot, source, grid: Math.max(1, Math.min(d.rows, 132 * Math.max(1, Math.floor(2048 / threads)))), block: threads, sharedBytes };
}

/** One translation unit: the preamble once, then the kernels (deduplicated by name). */
export function renderUnit(kernels: readonly RenderedKernel[]): string {
  const seen = new Set<string>();
  const bodies = kernels.filter((k) => !seen.has(k.name) && seen.add(k.name)).map((k) => k.source);
  return `${PREAMBLE()}\n${bodies.join('\n')}`;
}
