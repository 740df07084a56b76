/**
 * Element-wise ops: unary maths, broadcasting binary arithmetic/comparison/logic, variadic Max/Min,
 * Where, Clip, Cast/CastLike, Identity, IsNaN. Reference maths is JS double rounded to the output
 * storage (float32 for every float type; Cast rounds to the target type; integers truncate).
 */
import { type DType, dtypeFromOnnx, isFloat, isInteger, roundToBf16, roundToF16 } from '../ir/dtype.ts';
import { fail } from '../errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import {
  type OpDef, type RuntimeValue, attrInt, broadcastIndex, broadcastShapes, newTensor, out, sameShape,
  tensorArg, optionalTensor,
} from './op.ts';

type Unary = (x: number) => number;

function unary(fn: Unary, outDtype?: DType): OpDef {
  return {
    infer: (c) => [out(outDtype ?? c.input(0).dtype, c.input(0).shape)],
    exec: (ins, node) => {
      const x = tensorArg(ins, 0, node);
      const y = newTensor(outDtype ?? x.dtype, x.shape);
      for (let i = 0; i < x.size; i++) y.set(i, fn(x.get(i)));
      return [y];
    },
  };
}

const sigmoid: Unary = (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

type Binary = (a: number, b: number) => number;

/** Applies fn over broadcast inputs; integer results truncate toward zero. */
function broadcastMap(tensors: readonly Tensor[], outDtype: DType, where: string, fn: (vals: number[]) => number): Tensor {
  const shape = broadcastShapes(tensors.map((t) => t.shape), where);
  const y = newTensor(outDtype, shape);
  const maps = tensors.map((t) => (sameShape(t.shape, shape) ? undefined : broadcastIndex(t.shape, shape)));
  const vals = new Array<number>(tensors.length);
  const truncate = isInteger(outDtype);
  for (let k = 0; k < y.size; k++) {
    for (let j = 0; j < tensors.length; j++) vals[j] = tensors[j].get(maps[j] ? maps[j]![k] : k);
    const v = fn(vals);
    y.set(k, truncate ? Math.trunc(v) : v);
  }
  return y;
}

function binary(fn: Binary, resultDtype?: DType): OpDef {
  return {
    infer: (c) => {
      const a = c.input(0), b = c.input(1);
      if (a.dtype !== b.dtype) fail(c.where, 'inputs of one dtype', `${a.dtype} and ${b.dtype}`);
      return [out(resultDtype ?? a.dtype, broadcastShapes([a.shape, b.shape], c.where))];
    },
    exec: (ins, node) => {
      const a = tensorArg(ins, 0, node), b = tensorArg(ins, 1, node);
      return [broadcastMap([a, b], resultDtype ?? a.dtype, node.op, (v) => fn(v[0], v[1]))];
    },
  };
}

function variadic(fn: (vals: number[]) => number): OpDef {
  return {
    infer: (c) => {
      const n = c.node.inputs.length;
      const types = Array.from({ length: n }, (_, i) => c.input(i));
      return [out(types[0].dtype, broadcastShapes(types.map((t) => t.shape), c.where))];
    },
    exec: (ins, node) => {
      const ts = ins.map((_, i) => tensorArg(ins, i, node));
      return [broadcastMap(ts, ts[0].dtype, node.op, fn)];
    },
  };
}

const intDiv = (a: number, b: number) => (b === 0 ? 0 : Math.trunc(a / b));

/** Div is integer division for integer inputs, true division otherwise. */
const div: OpDef = {
  infer: binary((a, b) => a / b).infer,
  exec: (ins, node) => {
    const a = tensorArg(ins, 0, node), b = tensorArg(ins, 1, node);
    const f = isInteger(a.dtype) ? intDiv : (x: number, y: number) => x / y;
    return [broadcastMap([a, b], a.dtype, node.op, (v) => f(v[0], v[1]))];
  },
};

/** Rounds a float32 value as storing it in `dtype` would. */
export function roundTo(dtype: DType, v: number): number {
  switch (dtype) {
    case 'float16': return roundToF16(v);
    case 'bfloat16': return roundToBf16(v);
    default:
      if (dtype.startsWith('float8') || dtype === 'float4e2m1') {
        fail(`Cast to ${dtype}`, 'a cast the reference executor simulates', 'a float8/float4 cast (added with quantization)');
      }
      return v;
  }
}

function castTensor(x: Tensor, to: DType): Tensor {
  const y = newTensor(to, x.shape);
  if (to === 'string' || x.dtype === 'string') fail('Cast', 'numeric types', 'string');
  if (x.data instanceof BigInt64Array && !isFloat(to)) {
    for (let i = 0; i < x.size; i++) y.set(i, to === 'bool' ? (x.data[i] !== 0n ? 1 : 0) : x.data[i]);
    return y;
  }
  for (let i = 0; i < x.size; i++) {
    const v = x.get(i);
    if (isFloat(to)) y.set(i, roundTo(to, v));
    else if (to === 'bool') y.set(i, v !== 0 ? 1 : 0);
    else y.set(i, Number.isNaN(v) ? 0 : Math.trunc(v));
  }
  return y;
}

const cast: OpDef = {
  infer: (c) => {
    const to = dtypeFromOnnx(attrInt(c.node, 'to', 0));
    if (!to) fail(c.where, "a known 'to' dtype", `code ${attrInt(c.node, 'to', 0)}`);
    return [out(to, c.input(0).shape)];
  },
  exec: (ins, node) => [castTensor(tensorArg(ins, 0, node), dtypeFromOnnx(attrInt(node, 'to', 0))!)],
};

const castLike: OpDef = {
  infer: (c) => [out(c.input(1).dtype, c.input(0).shape)],
  exec: (ins, node) => [castTensor(tensorArg(ins, 0, node), tensorArg(ins, 1, node).dtype)],
};

const identity: OpDef = {
  infer: (c) => [c.inputType(0)],
  exec: (ins) => [ins[0] as RuntimeValue],
};

const where: OpDef = {
  infer: (c) => {
    const cond = c.input(0), x = c.input(1), y = c.input(2);
    if (cond.dtype !== 'bool') fail(c.where, 'a bool condition', cond.dtype);
    return [out(x.dtype, broadcastShapes([cond.shape, x.shape, y.shape], c.where))];
  },
  exec: (ins, node) => {
    const ts = [0, 1, 2].map((i) => tensorArg(ins, i, node));
    return [broadcastMap(ts, ts[1].dtype, node.op, (v) => (v[0] ? v[1] : v[2]))];
  },
};

const clip: OpDef = {
  infer: (c) => [c.input(0)],
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const lo = optionalTensor(ins, 1)?.get(0) ?? -Infinity;
    const hi = optionalTensor(ins, 2)?.get(0) ?? Infinity;
    const y = newTensor(x.dtype, x.shape);
    for (let i = 0; i < x.size; i++) y.set(i, Math.min(Math.max(x.get(i), lo), hi));
    return [y];
  },
};

const bool = (v: boolean) => (v ? 1 : 0);

/** Gelu (opset 20): exact (erf) or the tanh approximation. */
const GELU_C = Math.sqrt(2 / Math.PI);
function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse for a reference; use the series / continued fraction.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t, term = t;
    for (let n = 1; n < 60; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let cf = 0;
  for (let n = 60; n >= 1; n--) cf = (n / 2) / (t + cf);
  return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + cf));
}
const gelu: OpDef = {
  infer: (c) => [c.input(0)],
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const tanh = (node.attrs.approximate ?? 'none') === 'tanh';
    const y = newTensor(x.dtype, x.shape);
    for (let i = 0; i < x.size; i++) {
      const v = x.get(i);
      y.set(i, tanh ? 0.5 * v * (1 + Math.tanh(GELU_C * (v + 0.044715 * v * v * v))) : 0.5 * v * (1 + erf(v / Math.SQRT2)));
    }
    return [y];
  },
};

export const elementwiseOps: Record<string, OpDef> = {
  Neg: unary((x) => -x),
  Abs: unary(Math.abs),
  Sqrt: unary(Math.sqrt),
  Reciprocal: unary((x) => 1 / x),
  Exp: unary(Math.exp),
  Log: unary(Math.log),
  Sin: unary(Math.sin),
  Cos: unary(Math.cos),
  Tanh: unary(Math.tanh),
  Sigmoid: unary(sigmoid),
  Relu: unary((x) => Math.max(x, 0)),
  Gelu: gelu,
  Not: unary((x) => bool(!x), 'bool'),
  IsNaN: unary((x) => bool(Number.isNaN(x)), 'bool'),
  Add: binary((a, b) => a + b),
  Sub: binary((a, b) => a - b),
  Mul: binary((a, b) => a * b),
  Div: div,
  Pow: { infer: (c) => [out(c.input(0).dtype, broadcastShapes([c.input(0).shape, c.input(1).shape], c.where))],
         exec: (ins, node) => [broadcastMap([tensorArg(ins, 0, node), tensorArg(ins, 1, node)], tensorArg(ins, 0, node).dtype, node.op, (v) => Math.pow(v[0], v[1]))] },
  And: binary((a, b) => bool(!!a && !!b), 'bool'),
  Or: binary((a, b) => bool(!!a || !!b), 'bool'),
  Equal: binary((a, b) => bool(a === b), 'bool'),
  Greater: binary((a, b) => bool(a > b), 'bool'),
  GreaterOrEqual: binary((a, b) => bool(a >= b), 'bool'),
  Less: binary((a, b) => bool(a < b), 'bool'),
  LessOrEqual: binary((a, b) => bool(a <= b), 'bool'),
  Max: variadic((v) => v.reduce((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)))),
  Min: variadic((v) => v.reduce((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)))),
  Where: where,
  Clip: clip,
  Cast: cast,
  CastLike: castLike,
  Identity: identity,
};
