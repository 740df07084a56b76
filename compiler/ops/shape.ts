/**
 * Data-movement and shape ops: Shape, Constant, ConstantOfShape, Reshape, Expand, Concat, Slice,
 * Split, Squeeze, Unsqueeze, Transpose, Gather, GatherND, Range, Pad, SplitToSequence, SequenceAt.
 * Ops whose output shape depends on an input's value (Reshape, Expand, Slice, Range...) require
 * that value at compile time: after specialisation every shape computation is a known constant.
 */
import { fail } from '../errors.ts';
import { tensorType, type TensorType } from '../ir/graph.ts';
import { Tensor } from '../ir/tensor.ts';
import {
  type InferCtx, type OpDef, type RuntimeValue, attr, attrInt, attrInts, attrString, broadcastIndex,
  broadcastShapes, newTensor, normAxis, optionalTensor, out, strides, tensorArg,
} from './op.ts';

/** Builds y[outShape] with y[k] = x[src(k's multi-index)]. */
function remap(x: Tensor, outShape: readonly number[], src: (idx: number[]) => number): Tensor {
  const y = newTensor(x.dtype, outShape);
  const idx = new Array<number>(outShape.length).fill(0);
  const data = y.data as unknown as unknown[];
  const xd = x.data as unknown as unknown[];
  for (let k = 0; k < y.size; k++) {
    data[k] = xd[src(idx)];
    for (let d = outShape.length - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return y;
}

function dot(idx: readonly number[], s: readonly number[]): number {
  let f = 0;
  for (let i = 0; i < idx.length; i++) f += idx[i] * s[i];
  return f;
}

// ---- Shape / Constant ----------------------------------------------------------------------------

export function shapeRange(rank: number, node: InferCtx['node']): [number, number] {
  const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  return [clampIdx(attrInt(node, 'start', 0)), clampIdx(attrInt(node, 'end', rank))];
}

const shape: OpDef = {
  infer: (c) => {
    const [s, e] = shapeRange(c.inputType(0).kind === 'tensor' ? (c.inputType(0) as TensorType).shape.length : 0, c.node);
    return [out('int64', [Math.max(e - s, 0)])];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const [s, e] = shapeRange(x.shape.length, node);
    return [Tensor.fromNumbers('int64', [Math.max(e - s, 0)], x.shape.slice(s, e))];
  },
};

function constantValue(node: InferCtx['node'], where: string): Tensor {
  const v = attr(node, 'value');
  if (v instanceof Tensor) return v;
  if (node.attrs.value_float !== undefined) return Tensor.scalar('float32', node.attrs.value_float as number);
  if (node.attrs.value_int !== undefined) return Tensor.scalar('int64', node.attrs.value_int as number);
  const floats = attrInts(node, 'value_floats');
  if (floats) return Tensor.fromNumbers('float32', [floats.length], floats);
  const ints = attrInts(node, 'value_ints');
  if (ints) return Tensor.fromNumbers('int64', [ints.length], ints);
  return fail(where, 'a Constant with value/value_float(s)/value_int(s)', `attributes {${Object.keys(node.attrs)}}`);
}

const constant: OpDef = {
  infer: (c) => {
    const v = constantValue(c.node, c.where);
    return [out(v.dtype, v.shape)];
  },
  exec: (_ins, node) => [constantValue(node, node.op)],
};

const constantOfShape: OpDef = {
  infer: (c) => {
    const v = attr(c.node, 'value');
    return [out(v instanceof Tensor ? v.dtype : 'float32', c.requireValue(0, 'shape').toNumbers())];
  },
  exec: (ins, node) => {
    const v = attr(node, 'value');
    const fill = v instanceof Tensor ? v : Tensor.scalar('float32', 0);
    const y = newTensor(fill.dtype, tensorArg(ins, 0, node).toNumbers());
    for (let i = 0; i < y.size; i++) y.set(i, fill.data[0] as number);
    return [y];
  },
};

// ---- Reshape / Expand / Squeeze / Unsqueeze -----------------------------------------------------------

function reshapeTarget(inShape: readonly number[], spec: readonly number[], allowZero: boolean, where: string): number[] {
  const total = inShape.reduce((a, b) => a * b, 1);
  const dims = spec.map((d, i) => (d === 0 && !allowZero ? inShape[i] : d));
  const unknown = dims.indexOf(-1);
  if (unknown >= 0) {
    const known = dims.reduce((a, d, i) => (i === unknown ? a : a * d), 1);
    if (known === 0 || total % known !== 0) fail(where, `a shape compatible with [${inShape}]`, `[${spec}]`);
    dims[unknown] = total / known;
  }
  if (dims.reduce((a, b) => a * b, 1) !== total) fail(where, `a shape with ${total} elements (input [${inShape}])`, `[${spec}]`);
  return dims;
}

const reshape: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    return [out(x.dtype, reshapeTarget(x.shape, c.requireValue(1, 'shape').toNumbers(), attrInt(c.node, 'allowzero', 0) === 1, c.where))];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    return [x.reshape(reshapeTarget(x.shape, tensorArg(ins, 1, node).toNumbers(), attrInt(node, 'allowzero', 0) === 1, node.op))];
  },
};

const expand: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    return [out(x.dtype, broadcastShapes([x.shape, c.requireValue(1, 'shape').toNumbers()], c.where))];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const shp = broadcastShapes([x.shape, tensorArg(ins, 1, node).toNumbers()], node.op);
    const map = broadcastIndex(x.shape, shp);
    return [remapFlat(x, shp, (k) => map[k])];
  },
};

function remapFlat(x: Tensor, outShape: readonly number[], src: (k: number) => number): Tensor {
  const y = newTensor(x.dtype, outShape);
  const yd = y.data as unknown as unknown[], xd = x.data as unknown as unknown[];
  for (let k = 0; k < y.size; k++) yd[k] = xd[src(k)];
  return y;
}

function axesFrom(c: { has(i: number): boolean; requireValue(i: number, w: string): Tensor }, node: InferCtx['node'], i: number): number[] | undefined {
  if (c.has(i)) return c.requireValue(i, 'axes').toNumbers();
  return attrInts(node, 'axes')?.slice();
}

function squeezeShape(shape: readonly number[], axes: number[] | undefined, where: string): number[] {
  if (!axes) return shape.filter((d) => d !== 1);
  const norm = axes.map((a) => normAxis(a, shape.length, where));
  for (const a of norm) if (shape[a] !== 1) fail(where, `dim ${a} of [${shape}] to be 1`, `${shape[a]}`);
  return shape.filter((_, i) => !norm.includes(i));
}

function unsqueezeShape(shape: readonly number[], axes: number[], where: string): number[] {
  const rank = shape.length + axes.length;
  const norm = axes.map((a) => normAxis(a, rank, where));
  const result: number[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) result.push(norm.includes(i) ? 1 : shape[j++]);
  return result;
}

const valueCtx = (ins: readonly (RuntimeValue | undefined)[]) => ({
  has: (i: number) => ins[i] !== undefined,
  requireValue: (i: number) => ins[i] as Tensor,
});

const squeeze: OpDef = {
  infer: (c) => [out(c.input(0).dtype, squeezeShape(c.input(0).shape, axesFrom(c, c.node, 1), c.where))],
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    return [x.reshape(squeezeShape(x.shape, axesFrom(valueCtx(ins), node, 1), node.op))];
  },
};

const unsqueeze: OpDef = {
  infer: (c) => [out(c.input(0).dtype, unsqueezeShape(c.input(0).shape, axesFrom(c, c.node, 1) ?? [], c.where))],
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    return [x.reshape(unsqueezeShape(x.shape, axesFrom(valueCtx(ins), node, 1) ?? [], node.op))];
  },
};

// ---- Transpose / Concat / Slice / Split --------------------------------------------------------------

function permOf(node: InferCtx['node'], rank: number): number[] {
  return attrInts(node, 'perm')?.slice() ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

const transpose: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const perm = permOf(c.node, x.shape.length);
    if (perm.length !== x.shape.length || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
      fail(c.where, `a permutation of ${x.shape.length} axes`, `perm [${perm}]`);
    }
    return [out(x.dtype, perm.map((p) => x.shape[p]))];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const perm = permOf(node, x.shape.length);
    const s = strides(x.shape);
    const ps = perm.map((p) => s[p]);
    return [remap(x, perm.map((p) => x.shape[p]), (idx) => dot(idx, ps))];
  },
};

const concat: OpDef = {
  infer: (c) => {
    const first = c.input(0);
    const axis = normAxis(attrInt(c.node, 'axis', 0), first.shape.length, c.where);
    const result = first.shape.slice();
    for (let i = 1; i < c.node.inputs.length; i++) {
      const t = c.input(i);
      if (t.shape.length !== first.shape.length || t.shape.some((d, j) => j !== axis && d !== first.shape[j])) {
        fail(c.where, `inputs matching [${first.shape}] except on axis ${axis}`, `[${t.shape}] at input ${i}`);
      }
      result[axis] += t.shape[axis];
    }
    return [out(first.dtype, result)];
  },
  exec: (ins, node) => {
    const ts = ins.map((_, i) => tensorArg(ins, i, node));
    const axis = normAxis(attrInt(node, 'axis', 0), ts[0].shape.length, node.op);
    const outShape = ts[0].shape.slice();
    outShape[axis] = ts.reduce((a, t) => a + t.shape[axis], 0);
    const y = newTensor(ts[0].dtype, outShape);
    const outer = outShape.slice(0, axis).reduce((a, b) => a * b, 1);
    const yd = y.data as unknown as unknown[];
    let offset = 0;
    const rowOut = outShape.slice(axis).reduce((a, b) => a * b, 1);
    for (const t of ts) {
      const row = t.shape.slice(axis).reduce((a, b) => a * b, 1);
      const td = t.data as unknown as unknown[];
      for (let o = 0; o < outer; o++) for (let j = 0; j < row; j++) yd[o * rowOut + offset + j] = td[o * row + j];
      offset += row;
    }
    return [y];
  },
};

interface SliceSpec { starts: number[]; steps: number[]; outShape: number[] }

function sliceSpec(shape: readonly number[], starts: number[], ends: number[], axesIn: number[] | undefined, stepsIn: number[] | undefined, where: string): SliceSpec {
  const rank = shape.length;
  const st = new Array<number>(rank).fill(0), sp = new Array<number>(rank).fill(1), outShape = shape.slice();
  const axes = axesIn ?? starts.map((_, i) => i);
  axes.forEach((a0, i) => {
    const a = normAxis(a0, rank, where);
    const dim = shape[a];
    const step = stepsIn?.[i] ?? 1;
    if (step === 0) fail(where, 'non-zero slice steps', '0');
    let s = starts[i], e = ends[i];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
    }
    st[a] = s;
    sp[a] = step;
    outShape[a] = Math.max(0, Math.ceil((e - s) / step));
  });
  return { starts: st, steps: sp, outShape };
}

function sliceArgs(get: (i: number) => Tensor | undefined): [number[], number[], number[] | undefined, number[] | undefined] {
  return [get(1)!.toNumbers(), get(2)!.toNumbers(), get(3)?.toNumbers(), get(4)?.toNumbers()];
}

const slice: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const get = (i: number) => (c.has(i) ? c.requireValue(i, ['', 'starts', 'ends', 'axes', 'steps'][i]) : undefined);
    return [out(x.dtype, sliceSpec(x.shape, ...sliceArgs(get), c.where).outShape)];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const spec = sliceSpec(x.shape, ...sliceArgs((i) => optionalTensor(ins, i)), node.op);
    const s = strides(x.shape);
    return [remap(x, spec.outShape, (idx) => {
      let f = 0;
      for (let d = 0; d < idx.length; d++) f += (spec.starts[d] + idx[d] * spec.steps[d]) * s[d];
      return f;
    })];
  },
};

function splitSizes(dim: number, split: number[] | undefined, count: number, where: string): number[] {
  if (split) {
    if (split.reduce((a, b) => a + b, 0) !== dim) fail(where, `split sizes summing to ${dim}`, `[${split}]`);
    return split;
  }
  const chunk = Math.ceil(dim / count);
  return Array.from({ length: count }, (_, i) => Math.max(0, Math.min(chunk, dim - i * chunk)));
}

function splitTensor(x: Tensor, axis: number, sizes: number[]): Tensor[] {
  let offset = 0;
  return sizes.map((n) => {
    const outShape = x.shape.slice();
    outShape[axis] = n;
    const s = strides(x.shape);
    const start = offset;
    offset += n;
    return remap(x, outShape, (idx) => dot(idx, s) + start * s[axis]);
  });
}

const split: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const axis = normAxis(attrInt(c.node, 'axis', 0), x.shape.length, c.where);
    const count = attrInt(c.node, 'num_outputs', c.node.outputs.length);
    const sizes = splitSizes(x.shape[axis], c.has(1) ? c.requireValue(1, 'split').toNumbers() : attrInts(c.node, 'split')?.slice(), count, c.where);
    return sizes.map((n) => out(x.dtype, x.shape.map((d, i) => (i === axis ? n : d))));
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const axis = normAxis(attrInt(node, 'axis', 0), x.shape.length, node.op);
    const sizes = splitSizes(x.shape[axis], optionalTensor(ins, 1)?.toNumbers() ?? attrInts(node, 'split')?.slice(), attrInt(node, 'num_outputs', node.outputs.length), node.op);
    return splitTensor(x, axis, sizes);
  },
};

function sequenceSplit(shape: readonly number[], node: InferCtx['node'], splitValue: Tensor | undefined, where: string): { axis: number; sizes: number[]; keep: boolean } {
  const axis = normAxis(attrInt(node, 'axis', 0), shape.length, where);
  const dim = shape[axis];
  if (!splitValue) return { axis, sizes: new Array(dim).fill(1), keep: attrInt(node, 'keepdims', 1) === 1 };
  if (splitValue.shape.length === 0) {
    const n = splitValue.get(0);
    return { axis, sizes: Array.from({ length: Math.ceil(dim / n) }, (_, i) => Math.min(n, dim - i * n)), keep: true };
  }
  return { axis, sizes: splitSizes(dim, splitValue.toNumbers(), 0, where), keep: true };
}

const splitToSequence: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const { axis, sizes, keep } = sequenceSplit(x.shape, c.node, c.has(1) ? c.requireValue(1, 'split') : undefined, c.where);
    const elements = sizes.map((n) => tensorType(x.dtype, keep ? x.shape.map((d, i) => (i === axis ? n : d)) : x.shape.filter((_, i) => i !== axis)));
    return [{ kind: 'sequence', dtype: x.dtype, elements }];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const { axis, sizes, keep } = sequenceSplit(x.shape, node, optionalTensor(ins, 1), node.op);
    const parts = splitTensor(x, axis, sizes);
    return [keep ? parts : parts.map((p) => p.reshape(p.shape.filter((_, i) => i !== axis)))];
  },
};

const sequenceAt: OpDef = {
  infer: (c) => {
    const seq = c.inputType(0);
    if (seq.kind !== 'sequence') fail(c.where, 'a sequence input', 'a tensor');
    const n = seq.elements.length;
    const p = c.requireValue(1, 'position').get(0);
    if (p < -n || p >= n) fail(c.where, `a position in [${-n}, ${n - 1}]`, `${p}`);
    return [seq.elements[p < 0 ? p + n : p]];
  },
  exec: (ins) => {
    const seq = ins[0] as Tensor[];
    const p = (ins[1] as Tensor).get(0);
    return [seq[p < 0 ? p + seq.length : p]];
  },
};

// ---- Gather / GatherND / Range / Pad --------------------------------------------------------------

const gather: OpDef = {
  infer: (c) => {
    const x = c.input(0), ind = c.input(1);
    const axis = normAxis(attrInt(c.node, 'axis', 0), x.shape.length, c.where);
    return [out(x.dtype, [...x.shape.slice(0, axis), ...ind.shape, ...x.shape.slice(axis + 1)])];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node), ind = tensorArg(ins, 1, node);
    const axis = normAxis(attrInt(node, 'axis', 0), x.shape.length, node.op);
    const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const dim = x.shape[axis];
    const y = newTensor(x.dtype, [...x.shape.slice(0, axis), ...ind.shape, ...x.shape.slice(axis + 1)]);
    const yd = y.data as unknown as unknown[], xd = x.data as unknown as unknown[];
    let k = 0;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < ind.size; j++) {
        let i = ind.get(j);
        if (i < 0) i += dim;
        if (i < 0 || i >= dim) fail(`${node.op} node '${node.name}'`, `indices in [${-dim}, ${dim - 1}]`, `${ind.get(j)}`);
        for (let r = 0; r < inner; r++) yd[k++] = xd[(o * dim + i) * inner + r];
      }
    }
    return [y];
  },
};

function gatherNDShape(data: readonly number[], ind: readonly number[], b: number): number[] {
  const last = ind[ind.length - 1];
  return [...ind.slice(0, -1), ...data.slice(b + last)];
}

const gatherND: OpDef = {
  infer: (c) => {
    const x = c.input(0), ind = c.input(1);
    return [out(x.dtype, gatherNDShape(x.shape, ind.shape, attrInt(c.node, 'batch_dims', 0)))];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node), ind = tensorArg(ins, 1, node);
    const b = attrInt(node, 'batch_dims', 0);
    const last = ind.shape[ind.shape.length - 1];
    const outShape = gatherNDShape(x.shape, ind.shape, b);
    const s = strides(x.shape);
    const slice = x.shape.slice(b + last).reduce((p, q) => p * q, 1);
    const batch = x.shape.slice(0, b).reduce((p, q) => p * q, 1);
    const tuples = ind.size / last;
    const perBatch = tuples / batch;
    const batchStride = b > 0 ? s[b - 1] : 0;
    const y = newTensor(x.dtype, outShape);
    const yd = y.data as unknown as unknown[], xd = x.data as unknown as unknown[];
    for (let t = 0; t < tuples; t++) {
      let base = Math.floor(t / perBatch) * batchStride;
      for (let j = 0; j < last; j++) {
        let i = ind.get(t * last + j);
        if (i < 0) i += x.shape[b + j];
        base += i * s[b + j];
      }
      for (let r = 0; r < slice; r++) yd[t * slice + r] = xd[base + r];
    }
    return [y];
  },
};

function rangeCount(start: number, limit: number, delta: number): number {
  return Math.max(Math.ceil((limit - start) / delta), 0);
}

const range: OpDef = {
  infer: (c) => {
    const [s, l, d] = [0, 1, 2].map((i) => c.requireValue(i, ['start', 'limit', 'delta'][i]).get(0));
    return [out(c.input(0).dtype, [rangeCount(s, l, d)])];
  },
  exec: (ins, node) => {
    const [s, l, d] = [0, 1, 2].map((i) => tensorArg(ins, i, node).get(0));
    const n = rangeCount(s, l, d);
    const y = newTensor(tensorArg(ins, 0, node).dtype, [n]);
    for (let i = 0; i < n; i++) y.set(i, s + i * d);
    return [y];
  },
};

function padSpec(rank: number, pads: number[], axesIn: number[] | undefined, where: string): { before: number[]; after: number[] } {
  const axes = (axesIn ?? Array.from({ length: rank }, (_, i) => i)).map((a) => normAxis(a, rank, where));
  if (pads.length !== 2 * axes.length) fail(where, `${2 * axes.length} pads`, `${pads.length}`);
  const before = new Array<number>(rank).fill(0), after = new Array<number>(rank).fill(0);
  axes.forEach((a, i) => {
    before[a] = pads[i];
    after[a] = pads[i + axes.length];
  });
  return { before, after };
}

const pad: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const { before, after } = padSpec(x.shape.length, c.requireValue(1, 'pads').toNumbers(), c.has(3) ? c.requireValue(3, 'axes').toNumbers() : undefined, c.where);
    const mode = attrString(c.node, 'mode', 'constant');
    if (!['constant', 'reflect', 'edge', 'wrap'].includes(mode)) fail(c.where, 'Pad mode constant/reflect/edge/wrap', mode);
    return [out(x.dtype, x.shape.map((d, i) => d + before[i] + after[i]))];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const { before, after } = padSpec(x.shape.length, tensorArg(ins, 1, node).toNumbers(), optionalTensor(ins, 3)?.toNumbers(), node.op);
    const mode = attrString(node, 'mode', 'constant');
    const fill = optionalTensor(ins, 2)?.get(0) ?? 0;
    const outShape = x.shape.map((d, i) => d + before[i] + after[i]);
    const s = strides(x.shape);
    const y = newTensor(x.dtype, outShape);
    const idx = new Array<number>(outShape.length).fill(0);
    for (let k = 0; k < y.size; k++) {
      let flat = 0, inside = true;
      for (let d = 0; d < idx.length; d++) {
        let i = idx[d] - before[d];
        const n = x.shape[d];
        if (i < 0 || i >= n) {
          if (mode === 'constant') { inside = false; break; }
          if (mode === 'edge') i = Math.min(Math.max(i, 0), n - 1);
          else if (mode === 'wrap') i = ((i % n) + n) % n;
          else { // reflect
            const period = 2 * (n - 1);
            i = ((i % period) + period) % period;
            if (i >= n) i = period - i;
          }
        }
        flat += i * s[d];
      }
      y.set(k, inside ? x.get(flat) : fill);
      for (let d = outShape.length - 1; d >= 0; d--) {
        if (++idx[d] < outShape[d]) break;
        idx[d] = 0;
      }
    }
    return [y];
  },
};

export const shapeOps: Record<string, OpDef> = {
  Shape: shape,
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Reshape: reshape,
  Expand: expand,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Transpose: transpose,
  Concat: concat,
  Slice: slice,
  Split: split,
  SplitToSequence: splitToSequence,
  SequenceAt: sequenceAt,
  Gather: gather,
  GatherND: gatherND,
  Range: range,
  Pad: pad,
};
