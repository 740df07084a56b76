/**
 * Data-movement kernels: Concat, Transpose, Gather and GatherND (constant or run-time indices) and Slice become a
 * typed descriptor (the output shape, per input its shape and element type, the op's parameters)
 * rendered by templates/movement.cu.njk: each output element copies one input element (a Concat
 * of whole 16-byte vectors moves a vector at a time where its pointers are aligned: concatVector).
 * An input that is a strided window of an arena buffer (a Slice or Split part, plan.ts) is read
 * through its strides. Expand is an element-wise kernel (a broadcast load) and needs nothing here.
 */
import nunjucks from 'nunjucks';
import { join } from 'node:path';
import { fail } from '../errors.ts';
import { type DType, bytesFor } from '../ir/dtype.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { ROOT } from '../paths.ts';
import { H100_SMS } from './device.ts';
import type { RenderedKernel } from './render.ts';
import { jsonHash16 } from '../hash.ts';

export interface MovementDescriptor {
  kind: 'movement';
  op: 'Concat' | 'Transpose' | 'Gather' | 'GatherND' | 'Slice';
  outShape: number[];
  /** `strides`: element strides of an input read as a strided window (absent: contiguous). */
  inputs: { shape: number[]; type: string; strides?: number[] }[];
  outType: string;
  /** Concat/Gather axis; Transpose perm; Slice starts and steps per axis. */
  axis?: number;
  perm?: number[];
  starts?: number[];
  steps?: number[];
}

const C_TYPE: Partial<Record<DType, string>> = {
  float32: 'float', float64: 'double', bfloat16: '__nv_bfloat16', float16: '__half', float8e4m3fn: '__nv_fp8_e4m3',
  int64: 'long long', int32: 'int', bool: 'bool', uint8: 'uint8_t',
};
export const MOVEMENT_OPS = new Set(['Concat', 'Transpose', 'Gather', 'GatherND', 'Slice']);

const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(ROOT, 'templates')), { autoescape: false, throwOnUndefined: true });
const strides = (s: readonly number[]) => s.map((_, i) => s.slice(i + 1).reduce((a, b) => a * b, 1));

/** `windowStrides`: an input's element strides when it is a strided window (plan.ts), else undefined. */
export function movementDescriptor(graph: Graph, node: Node, windowStrides: (value: string) => number[] | undefined = () => undefined): MovementDescriptor {
  const where = `${node.op} kernel -> ${node.outputs[0]}`;
  const t = (v: string) => graph.types.get(v) as unknown as { dtype: DType; shape: number[] };
  const ctype = (d: DType) => C_TYPE[d] ?? fail(where, 'an element type the movement kernels support', d);
  const out = t(node.outputs[0]);
  const rank = out.shape.length;
  const norm = (a: number, r = rank) => (a < 0 ? a + r : a);
  const inputs = node.inputs.filter(Boolean).map((x) => {
    const shape = [...t(x).shape], window = windowStrides(x), dense = strides(shape);
    const strided = window && window.some((st, i) => shape[i] !== 1 && st !== dense[i]);
    return { shape, type: ctype(t(x).dtype), ...(strided ? { strides: window } : {}) };
  });
  const base = { kind: 'movement' as const, op: node.op as MovementDescriptor['op'], outShape: [...out.shape], outType: ctype(out.dtype) };
  switch (node.op) {
    case 'Concat': return { ...base, inputs, axis: norm((node.attrs.axis as number) ?? 0) };
    case 'Transpose': return { ...base, inputs, perm: ((node.attrs.perm as number[] | undefined) ?? inputs[0].shape.map((_, i) => rank - 1 - i)).slice() };
    case 'Gather': return { ...base, inputs, axis: norm((node.attrs.axis as number | undefined) ?? 0, inputs[0].shape.length) };
    case 'GatherND':
      if ((node.attrs.batch_dims ?? 0) !== 0) fail(where, 'GatherND with batch_dims 0', `batch_dims ${node.attrs.batch_dims}`);
      return { ...base, inputs };
    case 'Slice': {
      const value = (i: number) => graph.constants.get(node.inputs[i]);
      const known = (i: number) => {
        const c = value(i);
        if (!node.inputs[i]) return undefined;
        if (!c || c.source.kind !== 'inline') fail(where, 'compile-time slice parameters', node.inputs[i]);
        return c.source.tensor.toNumbers();
      };
      const inShape = inputs[0].shape;
      const [st, ax, sp] = [known(1)!, known(3), known(4)];
      const starts = new Array(inShape.length).fill(0), steps = new Array(inShape.length).fill(1);
      (ax ?? st.map((_, i) => i)).forEach((a0, i) => {
        const a = norm(a0, inShape.length), d = inShape[a], step = sp?.[i] ?? 1;
        let s = st[i] < 0 ? st[i] + d : st[i];
        s = step > 0 ? Math.min(Math.max(s, 0), d) : Math.min(Math.max(s, 0), d - 1);
        starts[a] = s;
        steps[a] = step;
      });
      return { ...base, inputs: [inputs[0]], starts, steps };
    }
    default: return fail(where, 'a data-movement op', node.op);
  }
}

/** The body lines: decompose k over the output shape, then read the source element (`copy`: the
 * statement moving the element(s) at flat output index k from input j's flat index src). */
function body(d: MovementDescriptor, copy = (j: number, src: string) => `out[k] = in${j}[${src}];`): string[] {
  const lines: string[] = [];
  const rank = d.outShape.length;
  lines.push(`long long r = k;`);
  for (let i = rank - 1; i >= 0; i--) lines.push(`const long long i${i} = r % ${d.outShape[i]}LL; r /= ${d.outShape[i]}LL;`);
  const flat = (shape: number[], idx: string[], st = strides(shape)) => idx.map((x, i) => `${x} * ${st[i]}LL`).join(' + ') || '0LL';
  const idx = Array.from({ length: rank }, (_, i) => `i${i}`);
  switch (d.op) {
    case 'Transpose': {
      // Output coordinate i corresponds to input axis perm[i].
      const inIdx = new Array<string>(rank);
      d.perm!.forEach((p, i) => (inIdx[p] = `i${i}`));
      lines.push(`out[k] = in0[${flat(d.inputs[0].shape, inIdx, d.inputs[0].strides)}];`);
      break;
    }
    case 'Concat': {
      let offset = 0;
      d.inputs.forEach((inp, j) => {
        const size = inp.shape[d.axis!];
        const local = idx.map((x, i) => (i === d.axis ? `(${x} - ${offset}LL)` : x));
        lines.push(`${j ? 'else ' : ''}if (i${d.axis} < ${offset + size}LL) ${copy(j, flat(inp.shape, local, inp.strides))}`);
        offset += size;
      });
      break;
    }
    case 'Gather': {
      const a = d.axis!, data = d.inputs[0], ind = d.inputs[1];
      const q = ind.shape.length;
      const indIdx = Array.from({ length: q }, (_, i) => `i${a + i}`);
      lines.push(`long long g = (long long)in1[${flat(ind.shape, indIdx, ind.strides)}]; if (g < 0) g += ${data.shape[a]}LL;`);
      const src = [...idx.slice(0, a), 'g', ...idx.slice(a + q)];
      lines.push(`out[k] = in0[${flat(data.shape, src, data.strides)}];`);
      break;
    }
    case 'GatherND': {
      // Output = indices' leading dims, then the data dims after the q indexed ones.
      const data = d.inputs[0], ind = d.inputs[1];
      if (data.strides || ind.strides) fail(`GatherND kernel`, 'dense inputs', 'a strided window');
      const q = ind.shape.at(-1)!, lead = ind.shape.length - 1;
      lines.push(`const long long b = (${flat(ind.shape.slice(0, lead), idx.slice(0, lead))}) * ${q}LL;`);
      for (let j = 0; j < q; j++) lines.push(`long long c${j} = (long long)in1[b + ${j}LL]; if (c${j} < 0) c${j} += ${data.shape[j]}LL;`);
      const src = [...Array.from({ length: q }, (_, j) => `c${j}`), ...idx.slice(lead)];
      lines.push(`out[k] = in0[${flat(data.shape, src)}];`);
      break;
    }
    case 'Slice': {
      const src = idx.map((x, i) => `(${d.starts![i]}LL + ${x} * ${d.steps![i]}LL)`);
      lines.push(`out[k] = in0[${flat(d.inputs[0].shape, src, d.inputs[0].strides)}];`);
      break;
    }
  }
  return lines;
}

/** Bytes of an element of a descriptor's C type (C_TYPE read backwards). */
const bytesOfC = (c: string) => {
  const dtype = (Object.keys(C_TYPE) as DType[]).find((t) => C_TYPE[t] === c);
  return dtype ? bytesFor(dtype, 1) : Infinity;
};

/**
 * Elements a Concat moves as one 16-byte vector (1: none): every input dense and of the output's
 * type, each one's run along and after the axis a whole number of vectors, so a vector never
 * straddles two inputs. The kernel takes the vector loop only when every pointer is 16-byte
 * aligned (a window's start may not be), else the element loop. Flux.2's text ‖ image Concat of
 * [1, 4608, 6144] bf16 ran at 47% of the 1 GiB copy element by element (80.5 µs; by vectors 42.3 µs,
 * 89%: H100 80GB HBM3, bench/RESULTS.md session 12 calls G3 and G4).
 */
export function concatVector(d: MovementDescriptor): number {
  if (d.op !== 'Concat') return 1;
  const v = 16 / bytesOfC(d.outType);
  const inner = d.outShape.slice(d.axis! + 1).reduce((a, b) => a * b, 1);
  const fits = d.inputs.every((inp) => !inp.strides && inp.type === d.outType && (inp.shape[d.axis!] * inner) % v === 0);
  return v > 1 && fits ? v : 1;
}

export function renderMovement(d: MovementDescriptor, preambleHash: string): RenderedKernel {
  const name = `mv_${jsonHash16({ d, preambleHash })}`;
  const total = d.outShape.reduce((a, b) => a * b, 1);
  const params = [...d.inputs.map((inp, k) => `const ${inp.type}* __restrict__ in${k}`), `${d.outType}* __restrict__ out`];
  const vec = concatVector(d);
  const vectors = vec > 1 ? {
    vec, pointers: [...d.inputs.map((_, k) => `in${k}`), 'out'],
    vecBody: body(d, (j, src) => `*reinterpret_cast<uint4*>(out + k) = *reinterpret_cast<const uint4*>(in${j} + (${src}));`),
  } : { vec };
  const source = env.render('movement.cu.njk', { name, threads: 256, params, total, body: body(d), ...vectors });
  return { name, source, hot: true, grid: Math.max(1, Math.min(Math.ceil(total / vec / 256), H100_SMS * 16)), block: 256, sharedBytes: 0 };
}
