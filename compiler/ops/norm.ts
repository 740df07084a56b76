/**
 * Reductions and normalisations: Softmax, LayerNormalization, RMSNormalization (opset 23),
 * InstanceNormalization, ReduceMean/ReduceSum/ReduceMax/ReduceL2 (axes as input, opset 18).
 * Statistics accumulate in double, as an fp32 stash_type implementation would at least match.
 */
import { fail } from '../errors.ts';
import type { Node } from '../ir/graph.ts';
import type { Tensor } from '../ir/tensor.ts';
import {
  type OpDef, type RuntimeValue, attrFloat, attrInt, attrInts, broadcastIndex, newTensor, normAxis, optionalTensor,
  out, tensorArg,
} from './op.ts';

/**
 * The row reductions (over the last axis) a fused element-wise kernel may hold, these norms and
 * dc.Quantize's per-row scale: a kernel with one is a row kernel (passes/fuse-elementwise.ts,
 * compiler/codegen/elementwise.ts).
 */
export const ROW_OPS: ReadonlySet<string> = new Set(['LayerNormalization', 'RMSNormalization', 'Softmax', 'Quantize']);

const softmax: OpDef = {
  infer: (c) => {
    normAxis(attrInt(c.node, 'axis', -1), c.input(0).shape.length, c.where);
    return [c.input(0)];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const axis = normAxis(attrInt(node, 'axis', -1), x.shape.length, node.op);
    const dim = x.shape[axis];
    const inner = x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const outer = x.size / (dim * inner);
    const X = x.toFloat32();
    const y = newTensor(x.dtype, x.shape);
    const Y = y.data as Float32Array;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * dim * inner + i;
        let max = -Infinity;
        for (let d = 0; d < dim; d++) max = Math.max(max, X[base + d * inner]);
        let sum = 0;
        for (let d = 0; d < dim; d++) sum += Math.exp(X[base + d * inner] - max);
        for (let d = 0; d < dim; d++) Y[base + d * inner] = Math.exp(X[base + d * inner] - max) / sum;
      }
    }
    return [y];
  },
};

/** Shape of per-row statistics: leading dims kept, normalised dims set to 1. */
const statShape = (shape: readonly number[], axis: number) => shape.map((d, i) => (i < axis ? d : 1));

const layerNorm: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const axis = normAxis(attrInt(c.node, 'axis', -1), x.shape.length, c.where);
    const stats = out('float32', statShape(x.shape, axis));
    return [x, stats, stats].slice(0, c.node.outputs.length);
  },
  exec: (ins, node) => normalizeRows(ins, node, true),
};

const rmsNorm: OpDef = {
  infer: (c) => {
    normAxis(attrInt(c.node, 'axis', -1), c.input(0).shape.length, c.where);
    return [c.input(0)];
  },
  exec: (ins, node) => normalizeRows(ins, node, false).slice(0, 1),
};

/** LayerNorm (centered) or RMSNorm over dims [axis, rank), then scale (and bias) broadcast. */
function normalizeRows(ins: readonly (RuntimeValue | undefined)[], node: Node, centered: boolean): Tensor[] {
  const x = tensorArg(ins, 0, node), scale = tensorArg(ins, 1, node), bias = optionalTensor(ins, 2);
  const axis = normAxis(attrInt(node, 'axis', -1), x.shape.length, node.op);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const normShape = x.shape.slice(axis);
  const inner = normShape.reduce((a, b) => a * b, 1);
  const outer = x.size / inner;
  const sMap = broadcastIndex(scale.shape, normShape);
  const bMap = bias ? broadcastIndex(bias.shape, normShape) : undefined;
  const X = x.toFloat32();
  const y = newTensor(x.dtype, x.shape);
  const mean = newTensor('float32', statShape(x.shape, axis)), inv = newTensor('float32', statShape(x.shape, axis));
  const Y = y.data as Float32Array;
  for (let o = 0; o < outer; o++) {
    const base = o * inner;
    let mu = 0;
    if (centered) {
      for (let i = 0; i < inner; i++) mu += X[base + i];
      mu /= inner;
    }
    let v = 0;
    for (let i = 0; i < inner; i++) v += (X[base + i] - mu) ** 2;
    const r = 1 / Math.sqrt(v / inner + eps);
    mean.set(o, mu);
    inv.set(o, r);
    for (let i = 0; i < inner; i++) {
      Y[base + i] = (X[base + i] - mu) * r * scale.get(sMap[i]) + (bias ? bias.get(bMap![i]) : 0);
    }
  }
  return [y, mean, inv];
}

const instanceNorm: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    if (x.shape.length < 3) fail(c.where, 'an input of rank >= 3 (N, C, spatial...)', `[${x.shape}]`);
    return [x];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node), scale = tensorArg(ins, 1, node), bias = tensorArg(ins, 2, node);
    const eps = attrFloat(node, 'epsilon', 1e-5);
    const [n, ch] = x.shape;
    const inner = x.size / (n * ch);
    const X = x.toFloat32();
    const y = newTensor(x.dtype, x.shape);
    const Y = y.data as Float32Array;
    for (let row = 0; row < n * ch; row++) {
      const c = row % ch, base = row * inner;
      let mu = 0;
      for (let i = 0; i < inner; i++) mu += X[base + i];
      mu /= inner;
      let v = 0;
      for (let i = 0; i < inner; i++) v += (X[base + i] - mu) ** 2;
      const r = 1 / Math.sqrt(v / inner + eps);
      for (let i = 0; i < inner; i++) Y[base + i] = (X[base + i] - mu) * r * scale.get(c) + bias.get(c);
    }
    return [y];
  },
};

// ---- Reduce* -------------------------------------------------------------------------------------

function reduceAxes(rank: number, axes: number[] | undefined, node: Node, where: string): number[] {
  if (!axes || axes.length === 0) {
    return attrInt(node, 'noop_with_empty_axes', 0) ? [] : Array.from({ length: rank }, (_, i) => i);
  }
  return axes.map((a) => normAxis(a, rank, where));
}

function reducedShape(shape: readonly number[], axes: number[], keep: boolean): number[] {
  return keep ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

type Reducer = { init: number; step: (acc: number, v: number) => number; finish: (acc: number, n: number) => number };

function reduceOp(r: Reducer): OpDef {
  const axesOf = (node: Node, value: Tensor | undefined) => value?.toNumbers() ?? attrInts(node, 'axes')?.slice();
  return {
    infer: (c) => {
      const x = c.input(0);
      const axes = reduceAxes(x.shape.length, axesOf(c.node, c.has(1) ? c.requireValue(1, 'axes') : undefined), c.node, c.where);
      return [out(x.dtype, reducedShape(x.shape, axes, attrInt(c.node, 'keepdims', 1) === 1))];
    },
    exec: (ins, node) => {
      const x = tensorArg(ins, 0, node);
      const axes = reduceAxes(x.shape.length, axesOf(node, optionalTensor(ins, 1)), node, node.op);
      const keep = attrInt(node, 'keepdims', 1) === 1;
      const y = newTensor(x.dtype, reducedShape(x.shape, axes, keep));
      const acc = new Float64Array(y.size).fill(r.init);
      const outStrides: number[] = [];
      let s = 1;
      for (let d = x.shape.length - 1; d >= 0; d--) {
        outStrides[d] = axes.includes(d) ? 0 : s;
        if (!axes.includes(d)) s *= x.shape[d];
      }
      const idx = new Array<number>(x.shape.length).fill(0);
      let o = 0;
      for (let k = 0; k < x.size; k++) {
        acc[o] = r.step(acc[o], x.get(k));
        for (let d = x.shape.length - 1; d >= 0; d--) {
          idx[d]++;
          o += outStrides[d];
          if (idx[d] < x.shape[d]) break;
          o -= outStrides[d] * idx[d];
          idx[d] = 0;
        }
      }
      const count = x.size / Math.max(y.size, 1);
      for (let i = 0; i < y.size; i++) y.set(i, r.finish(acc[i], count));
      return [y];
    },
  };
}

export const normOps: Record<string, OpDef> = {
  Softmax: softmax,
  LayerNormalization: layerNorm,
  RMSNormalization: rmsNorm,
  InstanceNormalization: instanceNorm,
  ReduceMean: reduceOp({ init: 0, step: (a, v) => a + v, finish: (a, n) => a / n }),
  ReduceSum: reduceOp({ init: 0, step: (a, v) => a + v, finish: (a) => a }),
  ReduceMax: reduceOp({ init: -Infinity, step: (a, v) => Math.max(a, v), finish: (a) => a }),
  ReduceL2: reduceOp({ init: 0, step: (a, v) => a + v * v, finish: (a) => Math.sqrt(a) }),
};
