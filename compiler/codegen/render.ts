/**
 * render(descriptor) -> CUDA source: pure, and identical descriptors render identically. The kernel
 * name is a hash of the descriptor and the template text, so it doubles as the cache key of the
 * rendered function. Skeletons live in templates/*.njk (nunjucks); the per-op maths comes from
 * snippets.ts; the shared preamble (templates/preamble.cuh) opens every translation unit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { ROOT } from '../paths.ts';
import { type CudaType, type ElementwiseDescriptor, type EwInput, type EwInstr, ROW_TUNING, type RowTuning, rowGeometry } from './elementwise.ts';
import { H100_SMS } from './device.ts';
import { snippet } from './snippets.ts';
import { fail } from '../errors.ts';
import { jsonHash16 } from '../hash.ts';

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
  /** A hot kernel whose spills the build tolerates (its other checks stand): attention kernels of at most two key tiles (compiler/codegen/attention.ts renderAttention). */
  spillsTolerated?: boolean;
  /** Launch geometry and the dynamic shared memory the kernel needs. */
  grid: number;
  block: number;
  sharedBytes: number;
}


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

/** Input `ref` (in<k>) at column `col` of the row whose offset is `base` (default: this row's), dequantized where it is a deferred GEMM's output. */
function loadExpr(inputs: EwInput[], ref: string, col: string, base = `off${ref.slice(2)}`): string {
  const k = Number(ref.slice(2));
  const inp = inputs[k];
  const c = inp.colStride === 0 ? '0LL' : inp.colStride === 1 ? col : `${col} * ${inp.colStride}LL`;
  const raw = `dc_load<T>(in${k}, ${base} + ${c})`;
  if (!inp.dequant) return raw;
  const f = `${inp.dequant.f0}LL + ${col}`;
  return `(${raw} * dqr${k} * dc_load<T>(dq${k}_1, ${f})${inp.dequant.values.length > 2 ? ` + dc_load<T>(dq${k}_2, ${f})` : ''})`;
}

/**
 * Dequantizes input k's 8 loaded values `arr` (columns col .. col + 7 of the input's own columns)
 * in place: raw · xs[token] (dqr<k>, per row) · ws[f] (+ bias[f]); '' for an input stored scaled.
 */
function dq8(d: ElementwiseDescriptor, k: number, arr: string, col: string): string {
  const q = d.inputs[k].dequant;
  if (!q) return '';
  const f = `${q.f0}LL + ${col}`;
  const bias = q.values.length > 2 ? ` + b_[e]` : '';
  return ` { T w_[8]${bias ? ', b_[8]' : ''}; dc_load8<T>(dq${k}_1, ${f}, w_);${bias ? ` dc_load8<T>(dq${k}_2, ${f}, b_);` : ''}\n#pragma unroll\n  for (int e = 0; e < 8; ++e) (${arr})[e] = (${arr})[e] * dqr${k} * w_[e]${bias}; }`;
}

/** Per row: each dequantized input's token scale. */
const dequantRowLines = (d: ElementwiseDescriptor) => d.inputs.flatMap((inp, k) => (inp.dequant ? [`const T dqr${k} = dc_load<T>(dq${k}_0, row + ${inp.dequant.tok0}LL);`] : []));

/** Parameters: inputs, then each dequantized input's xs, ws (and bias), then outputs (their values:
 * launchValues); `prefix` names a segmented kernel's segment (s0_in0, ...). */
function params(d: ElementwiseDescriptor, prefix = ''): { type: string; name: string }[] {
  return [
    ...d.inputs.map((inp, k) => ({ type: `const ${C_TYPE[inp.type]}* __restrict__`, name: `${prefix}in${k}` })),
    ...d.inputs.flatMap((inp, k) => (inp.dequant?.types ?? []).map((t, i) => ({ type: `const ${C_TYPE[t]}* __restrict__`, name: `${prefix}dq${k}_${i}` }))),
    ...d.outputs.map((o, k) => ({ type: `${C_TYPE[o.type]}* __restrict__`, name: `${prefix}out${k}` })),
  ];
}
const declared = (list: { type: string; name: string }[]) => list.map((p) => `${p.type} ${p.name}`);

/** The values a kernel's parameters take, in parameter order (params): its inputs, their
 * dequantization values, its outputs (a segmented kernel's: each segment's in turn). */
export const launchValues = (d: ElementwiseDescriptor): string[] => [...d.inputs.map((i) => i.name), ...d.inputs.flatMap((inp) => inp.dequant?.values ?? []), ...d.outputs.map((o) => o.name)];

/** Vectorised flat kernel: rows split into 8-element vectors, no per-element partner access. */
export const flatVectorisable = (d: ElementwiseDescriptor) => d.mode === 'flat' && d.cols % 8 === 0 && d.program.every((i) => i.op !== 'RoPE')
  && d.inputs.every((i) => i.vector || (i.colStride === 0 && !i.swiglu));

function renderFlatVec(d: ElementwiseDescriptor, name: string): string {
  const loads: string[] = [];
  const arr = new Map<string, string>();
  d.inputs.forEach((inp, k) => {
    if (inp.swiglu) {
      // SwiGLU reads both halves of a row twice as long as its output: gate at col, up at col + cols.
      loads.push(`T g${k}[8], u${k}[8]; dc_load8<T>(in${k}, off${k} + col0, g${k}); dc_load8<T>(in${k}, off${k} + col0 + ${d.cols}LL, u${k});${dq8(d, k, `g${k}`, 'col0')}${dq8(d, k, `u${k}`, `col0 + ${d.cols}LL`)}`);
      return;
    }
    arr.set(`in${k}`, `a${k}[e]`);
    loads.push(inp.colStride === 0
      ? `T a${k}[8]; { const T s = dc_load<T>(in${k}, off${k}); for (int e = 0; e < 8; ++e) a${k}[e] = s; }`
      : `T a${k}[8]; dc_load8<T>(in${k}, off${k} + col0, a${k});${dq8(d, k, `a${k}`, 'col0')}`);
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
  return env.render('elementwise_flat_vec.cu.njk', { name, threads: d.threads, params: declared(params(d)), compute: d.compute, rows: d.rows, cols: d.cols, rowOffsets: [...offsetLines(d.inputs), ...dequantRowLines(d)], loads, declares, body, stores });
}

function renderFlat(d: ElementwiseDescriptor, name: string): string {
  if (flatVectorisable(d)) return renderFlatVec(d, name);
  const value = (ref: string) => (ref.startsWith('in') ? loadExpr(d.inputs, ref, 'col') : ref);
  const body: string[] = [];
  for (const ins of d.program) {
    if (ins.op === 'SwiGLU') {
      const k = Number(ins.args[0].slice(2));
      const a = loadExpr(d.inputs, `in${k}`, 'col'), b = loadExpr(d.inputs, `in${k}`, `col + ${d.cols}LL`);
      body.push(`const T ${ins.out} = (${a}) * dc_sigmoid(${a}) * (${b});`);
    } else if (ins.op === 'RoPE') {
      body.push(ropeLine(d, ins, value, 'col'));
    } else {
      body.push(`const T ${ins.out} = ${snippet(ins, ins.args.map((a) => (a ? value(a) : '')))};`);
    }
  }
  const stores = d.outputs.map((_, k) => `dc_store<T>(out${k}, idx, ${value(d.results[k])});`);
  return env.render('elementwise_flat.cu.njk', { name, threads: d.threads, params: declared(params(d)), compute: d.compute, rows: d.rows, cols: d.cols, rowOffsets: [...offsetLines(d.inputs), ...dequantRowLines(d)], body, stores });
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
 * fp8 Quantize results read only by fp8 outputs: held as the unrounded product x · r (dc_qmul) and
 * rounded once by the store (rounding to e4m3 is idempotent, so the codes are the same).
 */
function rawQuantized(d: ElementwiseDescriptor): Set<string> {
  const raw = new Set<string>();
  for (const ins of d.program) {
    if (ins.op !== 'Quantize' || ins.attrs.format === 'bf16') continue;
    const read = d.program.some((o) => o.args.includes(ins.out));
    const stored = d.results.map((r, k) => (r === ins.out ? d.outputs[k].type : undefined)).filter((t) => t);
    if (!read && stored.length && stored.every((t) => t === 'fp8e4m3')) raw.add(ins.out);
  }
  return raw;
}

/** Dynamic shared memory each of `ctas` row-kernel CTAs on one SM may take: an H100 SM has 228 KB,
 * 1 KB of it reserved per CTA, at most 227 KB per CTA; less the static scratch (512 bytes at most). */
const rowSmemBudget = (ctas: number) => Math.min(227 * 1024, Math.floor((228 * 1024) / ctas) - 1024) - 512;

/** A staged input's 16-byte planes per 8-element vector: element offsets from the vector's
 * column (a float vector is two planes; a SwiGLU input reads a gate and an up vector, `half` apart). */
const planesOf = (inp: EwInput, half: number): number[] => (inp.swiglu ? [0, half] : [0]).flatMap((h) => (inp.type === 'float' ? [h, h + 4] : [h]));
const halfOf = (d: ElementwiseDescriptor, inp: EwInput) => inp.part?.width ?? d.cols;
const stageable = (inp: EwInput) => inp.vector && ['bf16', 'half', 'float'].includes(inp.type) && !inp.rowDims.every((dim) => dim.stride === 0 || dim.size === 1) && !runRows(inp);

/**
 * Rows over which an input that is not row-invariant stays the same (its innermost row dims broadcast:
 * Qwen-Image's modulation shift and scale, [B, 1, N] against B x 4096 rows), where at least RUN_ROWS;
 * else 0. Such an input is not staged in the ring row by row (two thirds of the LayerNorm+Modulate+
 * Quantize ring's copies were these rows again): it is held in registers, read again when its run
 * changes (rowKernel). RUN_ROWS is above any persistent grid (132 SMs x at most 4 CTAs), so that a CTA,
 * taking every grid-th row, reads such an input again at most once per run it reaches; shorter runs
 * stay in the ring, whose copies are in flight ahead of their rows. H100 80GB HBM3 (bench/RESULTS.md
 * "Session 21", call R1): Qwen-Image's LayerNorm+Modulate+Quantize 38.1 -> 37.5 µs, outputs identical.
 */
const RUN_ROWS = 1024;
function runRows(inp: Pick<EwInput, 'rowDims'>): number {
  let run = 1, d = inp.rowDims.length - 1;
  for (; d >= 0 && (inp.rowDims[d].stride === 0 || inp.rowDims[d].size === 1); d--) run *= inp.rowDims[d].size;
  return d >= 0 && run >= RUN_ROWS ? run : 0;
}

/**
 * Rows whose deferred inputs read more per-feature values (a deferred GEMM's scales and biases,
 * dequant.ts) than this many bytes run without the ring, at most 2 CTAs an SM: the ring's shared
 * memory leaves the L1 too little room to keep those values from one row to the next, so every row
 * reads them again from L2 (Qwen-Image's GELU+Quantize [4096, 12288]: 96 KB a row for 24 KB of the
 * row itself; on an H100 100 -> 94 µs without the ring, outputs byte-identical). SwiGLU readers keep
 * the ring: without it one spills and the Flux.2 step was 4 ms slower (bench/RESULTS.md, Session 6).
 */
const RING_FEATURE_BYTES = 64 * 1024;
const TYPE_BYTES: Partial<Record<CudaType, number>> = { float: 4, double: 8, bf16: 2, half: 2 };
function featureBytes(d: ElementwiseDescriptor): number {
  return d.inputs.reduce((sum, inp) => {
    if (!inp.dequant) return sum;
    const features = inp.swiglu ? 2 * halfOf(d, inp) : (inp.part?.width ?? d.cols);
    return sum + inp.dequant.types.slice(1).reduce((a, t) => a + (TYPE_BYTES[t] ?? 4) * features, 0);
  }, 0);
}
const unringed = (d: ElementwiseDescriptor) => featureBytes(d) > RING_FEATURE_BYTES && !d.inputs.some((inp) => inp.swiglu);

/** One slot of a ring stage: a staged input (`in<k>`) or a Concat (`t<i>`, its parts' vectors
 * share the slot: each vector of the row lies in one part). `copy` issues this thread's vector j. */
interface RingSlot { ref: string; offset: number; planes: number; copy: string }
interface Ring { stages: number; stageBytes: number; planeBytes: number; slots: Map<string, RingSlot> }

/**
 * The shared-memory ring of a row kernel: which inputs it stages (rows that change per row, read
 * as 16-byte vectors of a 2- or 4-byte float type; SwiGLU inputs with both halves; Concats whose
 * parts all qualify), where each 16-byte plane of a vector sits in a stage (planes of PV * T
 * vectors, thread-contiguous, so copies and reads are conflict-free), and how many stages fit
 * (undefined: fewer than 2).
 */
function rowRing(d: ElementwiseDescriptor, T: number, V: number, PV: number, tuning: RowTuning, ctasPerSm: number): Ring | undefined {
  if (V !== 8 || unringed(d)) return undefined;
  const planeBytes = PV * T * 16;
  const slots = new Map<string, RingSlot>();
  let offset = 0;
  const copyOf = (k: number, col: string, at: number) => planesOf(d.inputs[k], halfOf(d, d.inputs[k]))
    .map((pl, p) => `dc_cp_async16(st + ${at + p * planeBytes} + (j * ${T} + tid) * 16, in${k} + soff${k} + ${col} + ${pl}LL);`).join(' ');
  d.inputs.forEach((inp, k) => {
    if (inp.part || !stageable(inp)) return;
    const planes = planesOf(inp, halfOf(d, inp)).length;
    slots.set(`in${k}`, { ref: `in${k}`, offset, planes, copy: copyOf(k, 'cb', offset) });
    offset += planes * planeBytes;
  });
  for (const ins of d.program.filter((i) => i.op === 'Concat')) {
    const parts = ins.args.map((a) => Number(a.slice(2)));
    if (!parts.every((k) => stageable(d.inputs[k]))) continue;
    const planes = Math.max(...parts.map((k) => planesOf(d.inputs[k], halfOf(d, d.inputs[k])).length));
    slots.set(ins.out, { ref: ins.out, offset, planes, copy: partBranches(d, parts, (k, col) => copyOf(k, col, offset)) });
    offset += planes * planeBytes;
  }
  if (!slots.size) return undefined;
  const rope = d.program.some((i) => i.op === 'RoPE') ? d.cols * (d.compute === 'double' ? 8 : 4) : 0;
  const stages = Math.min(tuning.stages, Math.floor((rowSmemBudget(ctasPerSm) - rope) / offset));
  return stages >= 2 ? { stages, stageBytes: offset, planeBytes, slots } : undefined;
}

/** Per vector (column cb), the code of the Concat part it lies in: `body(k, column within the part)`. */
function partBranches(d: ElementwiseDescriptor, parts: number[], body: (k: number, col: string) => string, cb = 'cb'): string {
  return parts.map((k, p) => {
    const { start, width } = d.inputs[k].part!;
    const col = start ? `(${cb} - ${start}LL)` : cb;
    const cond = p === parts.length - 1 ? '' : `if (${cb} < ${start + width}LL) `;
    return `${p ? 'else ' : ''}${cond}{ ${body(k, col)} }`;
  }).join(' ');
}

/**
 * CTAs per SM a row kernel asks ptxas for (__launch_bounds__) and launches (the persistent grid):
 * the row arrays held in registers across the row (one per input read from memory, N elements per
 * thread, plus about 24 registers of working state) decide: the 64K registers of an SM hold
 * floor(65536 / (T * that)) CTAs, within 2048 threads and at most 4 (row-invariant 2-byte inputs
 * are held packed: half an array). Measured on the H100 against 1-4 fixed
 * (bench/results/row-kernels-2026-11-25b.md): LayerNorm+Modulate+Quantize [4096, 6144] (2.5 arrays
 * of 24) gets 3, its best (49 µs; 74 at 1, 58 at 4); Mul+Add+LayerNorm+Modulate+Quantize (4
 * arrays) gets 2, its best (71 µs; 97 at 3, where ptxas spills); the rule's pick was the best or
 * within 5% of it for every flux2_dev row kernel. Never so many that ptxas gets under
 * MIN_ROW_REGISTERS per thread: a kernel's working state alone needs about that, and the Qwen2.5-VL
 * text encoder's RMSNorm+Quantize (1024 threads x 4 columns, 2 CTAs = 32 registers) spilled.
 */
const MIN_ROW_REGISTERS = 40;
export function rowCtasPerSm(d: ElementwiseDescriptor, T: number, N: number): number {
  const held = d.inputs.filter((inp) => !inp.swiglu && !inp.part);
  // Row-invariant 2-byte vectors are held packed: half an array each. A Concat's parts (SwiGLU-made or read)
  // make one row array together.
  const arrays = held.reduce((acc, inp) => acc + (inp.vector && ['bf16', 'half'].includes(inp.type) && inp.rowDims.every((dim) => dim.stride === 0 || dim.size === 1) ? 0.5 : 1), 0)
    + (d.inputs.some((inp) => inp.part) ? 1 : 0);
  return Math.max(1, Math.min(4, Math.floor(2048 / T), Math.floor(65536 / (T * MIN_ROW_REGISTERS)), Math.floor(65536 / (T * (arrays * N + 24)))));
}

/**
 * Row kernel, register resident: each thread owns 8-column (16-byte) vectors j·THREADS + t of the
 * row (or single columns when the row does not split into vectors), so accesses are coalesced and
 * vectorised; every row value is a register array; each input row is read from global memory once
 * and each output written once. Rows that change per row stream through a shared-memory ring of
 * `stages` rows (rowRing: the next rows' copies in flight while this one is computed); row-invariant
 * inputs are loaded once per CTA (2-byte ones kept packed). Reductions are per-thread partial sums
 * then one block reduction (one barrier each, alternating scratch buffers). A Concat's vector comes
 * from the part it lies in (a SwiGLU part computed on the way). RoPE's partner element comes from
 * the neighbouring lane (interleaved pairs, by shuffle) or from a shared-memory copy of the row
 * (halves). Measured choices: bench/results/row-kernels-2026-11-25b.md.
 */
/**
 * A row kernel's block and occupancy: its geometry (rowGeometry), the CTAs an SM it takes — as many
 * as the row arrays' registers allow (rowCtasPerSm), at most 4, fewer where the ring would not fit in
 * shared memory; the tuning may fix the number instead — and its ring (undefined: none).
 */
function rowOccupancy(d: ElementwiseDescriptor) {
  const tuning = d.row ?? ROW_TUNING;
  const { threads: T, vec: V, per: PV, exact } = rowGeometry(d.cols, tuning.vectorsPerThread);
  const N = PV * V; // elements per thread
  let ctasPerSm = tuning.ctasPerSm || (unringed(d) ? Math.min(2, rowCtasPerSm(d, T, N)) : rowCtasPerSm(d, T, N));
  let ring = rowRing(d, T, V, PV, tuning, ctasPerSm);
  if (!ring && !tuning.ctasPerSm && rowRing(d, T, V, PV, tuning, 1)) while (!ring) ring = rowRing(d, T, V, PV, tuning, --ctasPerSm);
  return { T, V, PV, N, exact, ctasPerSm, ring };
}

function renderRow(d: ElementwiseDescriptor, name: string, segment?: { start: number; ctas: number }): { source: string; sharedBytes: number; threads: number; perSm: number } {
  // This CTA's index and the CTA count of its rows: the grid's, or a segment's (renderSegmented:
  // CTAs start .. start + ctas - 1, known when rendered).
  const [cta, ctas] = segment ? [`(blockIdx.x - ${segment.start}u)`, `${segment.ctas}u`] : ['blockIdx.x', 'gridDim.x'];
  const { T, V, PV, N, exact, ctasPerSm, ring } = rowOccupancy(d);
  const steps: RowStep[] = [];
  const val = new Map<string, string>(); // ref -> register array (or scalar) name
  // Element loop: element i of this thread is column c.
  const loop = (body: string) => V === 1
    ? `#pragma unroll\n  for (int i = 0; i < ${PV}; ++i) { const long long c = (long long)i * ${T} + tid; ${exact ? '' : `if (c < ${d.cols}LL) `}{ ${body} } }`
    : `#pragma unroll\n  for (int i = 0; i < ${N}; ++i) { const long long c = ((long long)(i >> 3) * ${T} + tid) * 8 + (i & 7); { ${body} } }`;
  // Vector loop: vector j of this thread starts at column cb.
  const vloop = (body: string) => `#pragma unroll\n  for (int j = 0; j < ${PV}; ++j) { const long long cb = ((long long)j * ${T} + tid) * 8; ${body} }`;
  // Load every input once; inputs that are the same for every row (norm weights, modulation
  // vectors) are loaded before the row loop and stay in registers for all rows of the CTA.
  const invariant: string[] = [];
  const loadInto = (k: number, arr: string, base: string) => (d.inputs[k].vector && V === 8
    ? vloop(`dc_load8<T>(in${k}, ${base} + cb, &${arr}[j * 8]);${dq8(d, k, `&${arr}[j * 8]`, 'cb')}`)
    : loop(`${arr}[i] = ${loadExpr(d.inputs, `in${k}`, 'c', base)};`));
  const isInvariant = (inp: EwInput) => inp.rowDims.every((dim) => dim.stride === 0 || dim.size === 1);
  if (ring) {
    // The ring: stage s holds row cta + (it + s) * ctas of every staged input; each
    // thread copies (cp.async) exactly the 16-byte vectors it later reads, so no barrier guards a
    // stage. The copies of row it + S - 1 are issued before row it is waited for and computed.
    const copies = (stage: string, rowExpr: string) => [
      `{ const long long srow = ${rowExpr}; if (srow < ${d.rows}LL) {`, ...offsetLines(d.inputs, 'srow', 'soff'),
      `  unsigned char* st = dc_row_smem + (${stage}) * ${ring.stageBytes};`,
      ...[...ring.slots.values()].map((sl) => vloop(sl.copy)),
      '} }', 'dc_cp_commit();'];
    invariant.push(`#pragma unroll 1\n  for (int s = 0; s < ${ring.stages - 1}; ++s) {`, ...copies('s', `(long long)${cta} + (long long)s * ${ctas}`), '}');
    steps.push({ comment: `ring: issue row + ${ring.stages - 1} grid strides, wait for this row`, lines: [
      ...copies(`(it + ${ring.stages - 1}) % ${ring.stages}`, `row + ${ring.stages - 1}LL * ${ctas}`),
      `dc_cp_wait<${ring.stages - 1}>();`, `const unsigned char* cur = dc_row_smem + (it % ${ring.stages}) * ${ring.stageBytes};`] });
  }
  const staged = ring?.slots ?? new Map<string, RingSlot>();
  // Row-invariant 2-byte vector inputs stay packed unless an output is the input itself or RoPE
  // reads its partner element from it.
  const packed = new Set<string>();
  const packable = (k: number) => V === 8 && d.inputs[k].vector && ['bf16', 'half'].includes(d.inputs[k].type) && !d.results.includes(`in${k}`)
    && !d.program.some((ins) => ins.op === 'RoPE' && ins.args[0] === `in${k}`);
  d.inputs.forEach((inp, k) => {
    if (inp.swiglu || inp.part) return; // read inside the SwiGLU / Concat step, a vector at a time
    val.set(`in${k}`, `x${k}`);
    if (isInvariant(inp)) {
      if (packable(k)) {
        // Raw 16-byte vectors (half the registers of floats), converted where used (dc_pk).
        packed.add(`in${k}`);
        invariant.push(`uint4 xr${k}[${PV}];`, vloop(`xr${k}[j] = *reinterpret_cast<const uint4*>(in${k} + cb);`));
        return;
      }
      invariant.push(`T x${k}[${N}];`, loadInto(k, `x${k}`, '0LL'));
      return;
    }
    const run = runRows(inp);
    if (run) {
      // The same for `run` rows at a time: held across rows, read again when the row's run changes.
      // As floats, unpacked once a run (packed, every row unpacked them again: an instruction a value each).
      const change = `{ const long long run_ = row / ${run}LL; if (run_ != run${k}) { run${k} = run_;`;
      invariant.push(`T x${k}[${N}];`, `long long run${k} = -1;`);
      steps.push({ comment: `input ${k} (once a run of ${run} rows)`, lines: [change, loadInto(k, `x${k}`, `off${k}`), '} }'] });
      return;
    }
    const sl = staged.get(`in${k}`);
    if (sl) {
      steps.push({ comment: `input ${k} (from the ring)`, lines: [`T x${k}[${N}];`, vloop(`dc_lds8<T>(in${k}, cur + ${sl.offset} + (j * ${T} + tid) * 16, ${ring!.planeBytes}, &x${k}[j * 8]);${dq8(d, k, `&x${k}[j * 8]`, 'cb')}`)] });
      return;
    }
    // Not staged (an fp8 or strided input, rows of single elements, or no room for two stages).
    steps.push({ comment: `input ${k}`, lines: [`T x${k}[${N}];`, loadInto(k, `x${k}`, `off${k}`)] });
  });
  const at = (ref: string) => (packed.has(ref) ? `dc_pk<T>(${ref}, xr${ref.slice(2)}, i)` : val.has(ref) ? (val.get(ref)!.startsWith('s_') ? val.get(ref)! : `${val.get(ref)}[i]`) : ref);
  let sharedBytes = 0;
  // Block reductions over the CTA's warps, known here (the per-warp partials read unrolled, not
  // in a loop over blockDim.x / 32): LayerNorm+Modulate+Quantize [4608, 6144] 35.4 -> 33.5-33.9 µs
  // on the H100 (bench/results/row-kernels-2026-11-26.md). Not at 64 registers a thread or fewer,
  // where the unrolled reads' registers made a 16-byte-vector dequantizing Quantize spill on
  // sm_100a (test/codegen-dequant.test.ts); the kernels there (4 CTAs of 256) gained little by it
  // (Quantize [4096, 6144] 28.3 -> 28.1 µs, [512, 6144] 4.1 -> 3.9).
  const red = (fn: string) => (65536 / (T * ctasPerSm) > 64 ? `${fn}_w<T, ${T / 32}>` : `${fn}<T, false>`);
  // Block reductions alternate two scratch buffers (one barrier each); a row with an odd number of
  // them ends with a barrier, so the next row's first reduction may overwrite the buffer.
  let reductions = 0;
  const scratch = () => `scratch + ${32 * (reductions++ % 2)}`;
  d.program.forEach((ins, i) => {
    const v = `v${i}`;
    const lines = [`T ${v}[${N}];`];
    const a = (k: number) => at(ins.args[k]);
    switch (ins.op) {
      case 'LayerNormalization': case 'RMSNormalization': {
        const eps = Number(ins.attrs.epsilon ?? 1e-5);
        // Row statistics by multiplies with 1 / cols and dc_rsqrt, not IEEE division and square
        // root: those sequences, once a warp a row, cost LayerNorm+Modulate+Quantize [4608, 6144]
        // about 4% (34.9 -> 33.4 µs, H100 80GB HBM3, call L1 in bench/RESULTS.md session 13); the
        // reference is float64 either way.
        const inv = `T(${1 / d.cols})`;
        if (ins.op === 'LayerNormalization' && T <= 512) {
          // One reduction of (sum, sum of squares): variance = E[x²] - mean², in fp32.
          lines.push(`T p${i} = T(0), q${i} = T(0);`, loop(`const T z = ${a(0)}; p${i} += z; q${i} += z * z;`), `${red('dc_block_sum2')}(p${i}, q${i}, ${scratch()});`);
          lines.push(`const T mean${i} = p${i} * ${inv};`, `const T var${i} = q${i} * ${inv} - mean${i} * mean${i};`);
          lines.push(`const T r${i} = dc_rsqrt((var${i} > T(0) ? var${i} : T(0)) + T(${eps}));`);
        } else {
          if (ins.op === 'LayerNormalization') {
            lines.push(`T p${i} = T(0);`, loop(`p${i} += ${a(0)};`), `const T mean${i} = ${red('dc_block_sum')}(p${i}, ${scratch()}) * ${inv};`);
          } else lines.push(`const T mean${i} = T(0);`);
          lines.push(`T q${i} = T(0);`, loop(`const T z = ${a(0)} - mean${i}; q${i} += z * z;`));
          lines.push(`const T r${i} = dc_rsqrt(${red('dc_block_sum')}(q${i}, ${scratch()}) * ${inv} + T(${eps}));`);
        }
        lines.push(loop(`${v}[i] = (${a(0)} - mean${i}) * r${i}${ins.args[1] ? ` * ${a(1)}` : ''}${ins.args[2] ? ` + ${a(2)}` : ''};`));
        break;
      }
      case 'Softmax':
        lines.push(`T m${i} = -INFINITY;`, loop(`m${i} = dc_max(m${i}, ${a(0)});`), `const T mx${i} = ${red('dc_block_max')}(m${i}, ${scratch()});`);
        lines.push(`T p${i} = T(0);`, loop(`${v}[i] = exp(${a(0)} - mx${i}); p${i} += ${v}[i];`), `const T sum${i} = ${red('dc_block_sum')}(p${i}, ${scratch()});`);
        lines.push(`const T rs${i} = T(1) / sum${i};`, loop(`${v}[i] = ${v}[i] * rs${i};`));
        break;
      case 'Quantize':
        // Per-token FP8: scale = dc_fp8_scale(amax) (fp32 amax / 448, 1 where not positive), q = e4m3(x · r), r = 1 / scale to fp32 (fp8Reciprocal), saturating; bf16: round.
        if (ins.attrs.format === 'bf16') lines.push(loop(`${v}[i] = dc_round_bf16(${a(0)});`), `const T s_${i} = T(1);`);
        else {
          lines.push(`T am${i} = T(0);`, loop(`am${i} = dc_amax(am${i}, ${a(0)});`), `const T amax${i} = ${red('dc_block_max')}(am${i}, ${scratch()});`);
          lines.push(`const T s_${i} = T(dc_fp8_scale(float(amax${i})));`, `const auto qd_${i} = dc_qprep(s_${i});`);
          // Stored to fp8 only: the product x · r unrounded (the store rounds it, dc_store8q). In float,
          // a row whose scale needs no prescaling (k = 1: all but near-zero rows) takes dc_qmul1.
          const scaled = (fn: string) => loop(`${v}[i] = ${rawQuantized(d).has(ins.out) ? `${fn}(${a(0)}, qd_${i})` : `dc_round_e4m3(${fn}(${a(0)}, qd_${i}))`};`);
          lines.push(d.compute === 'float' ? `if (qd_${i}.k == 1.f) {\n  ${scaled('dc_qmul1')}\n  } else {\n  ${scaled('dc_qmul')}\n  }` : scaled('dc_qmul'));
        }
        val.set(`${ins.out}_1`, `s_${i}`);
        break;
      case 'SwiGLU': {
        const k = Number(ins.args[0].slice(2));
        const sl = staged.get(`in${k}`);
        if (sl) {
          const up = sl.offset + (sl.planes / 2) * ring!.planeBytes;
          lines.push(vloop(`T g[8], u[8]; dc_lds8<T>(in${k}, cur + ${sl.offset} + (j * ${T} + tid) * 16, ${ring!.planeBytes}, g); dc_lds8<T>(in${k}, cur + ${up} + (j * ${T} + tid) * 16, ${ring!.planeBytes}, u);${dq8(d, k, 'g', 'cb')}${dq8(d, k, 'u', `cb + ${d.cols}LL`)}\n#pragma unroll\n  for (int e = 0; e < 8; ++e) ${v}[j * 8 + e] = g[e] * dc_sigmoid(g[e]) * u[e];`));
        } else if (V === 8 && d.inputs[k].vector) {
          lines.push(vloop(`T g[8], u[8]; dc_load8<T>(in${k}, off${k} + cb, g); dc_load8<T>(in${k}, off${k} + cb + ${d.cols}LL, u);${dq8(d, k, 'g', 'cb')}${dq8(d, k, 'u', `cb + ${d.cols}LL`)}\n#pragma unroll\n  for (int e = 0; e < 8; ++e) ${v}[j * 8 + e] = g[e] * dc_sigmoid(g[e]) * u[e];`));
        } else {
          lines.push(loop(`const T g = ${loadExpr(d.inputs, `in${k}`, 'c')}; ${v}[i] = g * dc_sigmoid(g) * ${loadExpr(d.inputs, `in${k}`, `c + ${d.cols}LL`)};`));
        }
        break;
      }
      case 'Concat': {
        // Each vector (element) of the row from the part it lies in; SwiGLU parts computed here.
        const parts = ins.args.map((x) => Number(x.slice(2)));
        const sl = staged.get(ins.out);
        const swiglu = (g: string, u: string, dst: string) => `\n#pragma unroll\n  for (int e = 0; e < 8; ++e) ${dst}[e] = ${g}[e] * dc_sigmoid(${g}[e]) * ${u}[e];`;
        if (sl) {
          const at = (p: number) => `cur + ${sl.offset + p * ring!.planeBytes} + (j * ${T} + tid) * 16`;
          lines.push(vloop(partBranches(d, parts, (k, col) => {
            const inp = d.inputs[k];
            if (!inp.swiglu) return `dc_lds8<T>(in${k}, ${at(0)}, ${ring!.planeBytes}, &${v}[j * 8]);${dq8(d, k, `&${v}[j * 8]`, col)}`;
            const up = planesOf(inp, 0).length / 2;
            return `T g[8], u[8]; dc_lds8<T>(in${k}, ${at(0)}, ${ring!.planeBytes}, g); dc_lds8<T>(in${k}, ${at(up)}, ${ring!.planeBytes}, u);${dq8(d, k, 'g', col)}${dq8(d, k, 'u', `${col} + ${inp.part!.width}LL`)}${swiglu('g', 'u', `(&${v}[j * 8])`)}`;
          })));
        } else if (V === 8) {
          const load8 = (k: number, col: string, dst: string) => (d.inputs[k].vector ? `dc_load8<T>(in${k}, off${k} + ${col}, ${dst});${dq8(d, k, dst, col)}`
            : `for (int e = 0; e < 8; ++e) ${dst}[e] = ${loadExpr(d.inputs, `in${k}`, `(${col} + e)`)};`);
          lines.push(vloop(partBranches(d, parts, (k, col) => (!d.inputs[k].swiglu ? load8(k, col, `(&${v}[j * 8])`)
            : `T g[8], u[8]; ${load8(k, col, 'g')} ${load8(k, `${col} + ${d.inputs[k].part!.width}LL`, 'u')}${swiglu('g', 'u', `(&${v}[j * 8])`)}`))));
        } else {
          lines.push(loop(partBranches(d, parts, (k, col) => {
            const x = (c: string) => loadExpr(d.inputs, `in${k}`, c);
            return d.inputs[k].swiglu ? `const T g = ${x(col)}; ${v}[i] = g * dc_sigmoid(g) * ${x(`${col} + ${d.inputs[k].part!.width}LL`)};` : `${v}[i] = ${x(col)};`;
          }, 'c')));
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
    else if (V === 8 && arr && !arr.startsWith('s_')) stores.push(vloop(`dc_store8${rawQuantized(d).has(ref) ? 'q' : ''}<T>(out${k}, row * ${d.cols}LL + cb, &${arr}[j * 8]);`));
    else stores.push(loop(`dc_store<T>(out${k}, row * ${d.cols}LL + c, ${at(ref)});`));
  });
  steps.push({ comment: 'outputs', lines: stores });
  const ringBytes = ring ? ring.stages * ring.stageBytes : 0;
  const source = env.render('elementwise_row.cu.njk', { name, segment: !!segment, cta, ctas, threads: T, minBlocks: ctasPerSm, params: declared(params(d)), compute: d.compute, rows: d.rows, invariant, rowOffsets: [...offsetLines(d.inputs), ...dequantRowLines(d)], steps, rowbufOffset: ringBytes, endBarrier: reductions % 2 === 1 });
  return { source, sharedBytes: ringBytes + sharedBytes, threads: T, perSm: ctasPerSm };
}

/** What a kernel's name hashes: the descriptor without the graph's value names, so equal kernels share it. */
const structureOf = (d: ElementwiseDescriptor) => ({
  ...d, inputs: d.inputs.map(({ name: _, dequant, ...rest }) => ({ ...rest, ...(dequant ? { dequant: { ...dequant, values: dequant.values.length } } : {}) })),
  outputs: d.outputs.map(({ name: _, ...rest }) => rest), undeferrable: undefined,
});

/** The hot-kernel rule (RenderedKernel.hot): rows wider than 16K elements hold 32+ elements per
 * thread per row value: with two live values they exceed the register budget of a 1024-thread CTA
 * and spill, accepted for now (text-encoder MLPs; see bench/RESULTS.md). So do rows of 16+ elements a
 * thread that no block divides (a column guard per element): a VAE decoder's attention softmax over
 * an image of H x W latents such as 110 x 148 (1184x880), once an image. Trigonometry: see RenderedKernel.hot. */
const isHot = (d: ElementwiseDescriptor) => {
  if (d.program.some((i) => i.op === 'Sin' || i.op === 'Cos')) return false;
  if (d.mode !== 'row') return true;
  const g = rowGeometry(d.cols, (d.row ?? ROW_TUNING).vectorsPerThread);
  return d.cols <= 16384 && (g.exact || g.per * g.vec < 16);
};


/**
 * CTAs of a segmented kernel's grid for each segment (rows of equal work): the fewest rows a CTA
 * that `total` CTAs allow every segment (R, the smallest with sum(ceil(rows / R)) <= total), then
 * the CTAs left to the segment with the fewest rows. A CTA's rows run one after another, each about
 * as long at any row count, so the small segment (the text stream) finishing early costs nothing,
 * and late costs the whole launch: splitting by elements instead gave Qwen-Image's 64-row text
 * segment 4 CTAs of 16 rows, and the pair ran 80 µs against 71 as two launches (H100 80GB HBM3,
 * bench/RESULTS.md session 12 call G1).
 */
export function segmentCtas(rows: readonly number[], total: number): number[] {
  if (!(total >= rows.length)) fail('segmented kernel grid', `at least one CTA a segment (${rows.length} segments)`, `${total} CTAs for rows [${rows.join(', ')}]`);
  const need = (r: number) => rows.reduce((a, n) => a + Math.ceil(n / r), 0);
  let perCta = Math.max(1, Math.ceil(rows.reduce((a, n) => a + n, 0) / total));
  while (need(perCta) > total) perCta++;
  const ctas = rows.map((n) => Math.ceil(n / perCta));
  const smallest = rows.indexOf(Math.min(...rows));
  ctas[smallest] = Math.min(rows[smallest], ctas[smallest] + total - need(perCta));
  return ctas;
}

/** Whether a kernel (by name) is a segmented one (renderSegmented). */
export const isSegmentedKernel = (name: string) => name.startsWith('ews_');

/** Which inputs a row kernel dequantizes as it loads (a deferred GEMM's output: dequant.ts). */
const dequantised = (d: ElementwiseDescriptor) => d.inputs.map((i) => (i.dequant ? 1 : 0)).join('');

/**
 * A segmented kernel (dc.SegmentedKernel, passes/fuse-horizontal.ts): row kernels in one launch.
 * Each segment renders as a device function looping over its own rows (elementwise_row.cu.njk),
 * force-inlined into the kernel, which calls the one its CTA belongs to. ptxas allocates the
 * inlined bodies jointly, so a pair may spill where each segment alone fits (Qwen-Image's
 * Mul+Add+LayerNorm+Modulate+Quantize, the text stream's reading a deferred GEMM, at its
 * 128-register cap alone): compiler/compile.ts buildWithSegments launches such a pair as its
 * segments. The persistent grid (H100_SMS x the CTAs per SM each segment takes alone) is split between the segments
 * (segmentCtas). Not merged (undefined: the caller launches them one by one):
 *   - segments that would take different CTAs per SM alone: one kernel has one register count, so
 *     the merged grid would run the larger segment with fewer CTAs than its best (Qwen-Image's
 *     Gelu+Quantize: 3 an SM for the image stream, 2 for the text stream's deferred reader);
 *   - segments of which one dequantizes an input and the other does not: their rows cost
 *     differently (the text stream's deferred GEMM's scales and biases, read again each row), and
 *     the text segment's CTAs became the launch's tail (Mul+Add+LayerNorm+Modulate+Quantize pairs
 *     ran 80-88 µs against 71-78 as two launches, Qwen-Image and Flux.2; H100 80GB HBM3, session 12
 *     call G1).
 * Parameters: each segment's in its plan order, prefixed s<k>_. `ctasTotal` replaces the grid's size (GPU tests: a small grid
 * runs many rows a CTA through each segment's ring).
 */
export function renderSegmented(ds: readonly ElementwiseDescriptor[], where: string, ctasTotal?: number): RenderedKernel | undefined {
  if (ds.length < 2 || ds.some((d) => d.mode !== 'row')) fail(where, 'two or more row kernels (a row reduction each)', ds.map((d) => d.mode).join(', '));
  const alone = ds.map(rowOccupancy);
  if (new Set(alone.map((r) => r.T)).size > 1) fail(where, 'segments of one block size (rows of one width)', alone.map((r) => r.T).join(', '));
  if (new Set(alone.map((r) => r.ctasPerSm)).size > 1 || new Set(ds.map(dequantised)).size > 1) return undefined;
  const perSm = alone[0].ctasPerSm;
  const ctas = segmentCtas(ds.map((d) => d.rows), ctasTotal ?? H100_SMS * perSm);
  const name = `ews_${jsonHash16({ structure: ds.map(structureOf), ctas, t: templateText('elementwise_row.cu.njk') + templateText('elementwise_segments.cu.njk'), p: PREAMBLE() })}`;
  const starts = ctas.map((_, k) => ctas.slice(0, k).reduce((a, b) => a + b, 0));
  const rows = ds.map((d, k) => renderRow(d, `${name}_s${k}`, { start: starts[k], ctas: ctas[k] }));
  const segments = rows.map((r, k) => ({ name: `${name}_s${k}`, source: r.source, end: starts[k] + ctas[k], args: params(ds[k], `s${k}_`).map((p) => p.name).join(', ') }));
  const start = starts.at(-1)! + ctas.at(-1)!;
  const source = env.render('elementwise_segments.cu.njk', { name, threads: rows[0].threads, minBlocks: perSm, params: declared(ds.flatMap((d, k) => params(d, `s${k}_`))), segments });
  return { name, hot: ds.every(isHot), source, grid: start, block: rows[0].threads, sharedBytes: Math.max(...rows.map((r) => r.sharedBytes)) };
}

/** Renders one element-wise kernel (without the preamble; renderUnit adds it once per unit). */
export function renderElementwise(d: ElementwiseDescriptor): RenderedKernel {
  const hot = isHot(d);
  const template = d.mode === 'row' ? 'elementwise_row.cu.njk' : flatVectorisable(d) ? 'elementwise_flat_vec.cu.njk' : 'elementwise_flat.cu.njk';
  const name = `ew_${jsonHash16({ structure: structureOf(d), t: templateText(template), p: PREAMBLE() })}`;
  if (d.mode === 'flat') {
    const work = (d.rows * d.cols) / (flatVectorisable(d) ? 8 : 1);
    return { name, hot, source: renderFlat(d, name), grid: Math.max(1, Math.min(Math.ceil(work / d.threads), H100_SMS * 16)), block: d.threads, sharedBytes: 0 };
  }
  const { source, sharedBytes, threads, perSm } = renderRow(d, name);
  // A persistent grid (132 SMs on an H100), each CTA looping over rows, so row-invariant inputs
  // are read once per CTA and the ring runs over all of a CTA's rows.
  return { name, hot, source, grid: Math.max(1, Math.min(d.rows, H100_SMS * perSm)), block: threads, sharedBytes };
}

/** One translation unit: the preamble once, then the kernels (deduplicated by name). */
export function renderUnit(kernels: readonly RenderedKernel[]): string {
  const seen = new Set<string>();
  const bodies = kernels.filter((k) => !seen.has(k.name) && seen.add(k.name)).map((k) => k.source);
  return `${PREAMBLE()}\n${bodies.join('\n')}`;
}
