/**
 * What every IR op provides: shape/dtype inference and a plain float32/int64 reference
 * implementation, plus (for compute ops) a FLOP count. Op files export `OpDef`s; registry.ts lists
 * them all. Helpers here: typed attribute access, broadcasting, index arithmetic.
 */
import { fail } from '../errors.ts';
import type { DType } from '../ir/dtype.ts';
import type { AttrValue, Node, TensorType, ValueType } from '../ir/graph.ts';
import { tensorType } from '../ir/graph.ts';
import { Tensor } from '../ir/tensor.ts';

/** A runtime value: a tensor, or a sequence of tensors. */
export type RuntimeValue = Tensor | Tensor[];

export interface InferCtx {
  readonly node: Node;
  /** How the node is named in messages. */
  readonly where: string;
  readonly opset: number;
  /** Input i is present (not omitted). */
  has(i: number): boolean;
  /** Type of input i, which must be a tensor with a static shape. */
  input(i: number): StaticTensorType;
  /** Type of input i as-is (tensor or sequence). */
  inputType(i: number): ValueType;
  /** The value of input i when known at compile time (constants, shape arithmetic). */
  value(i: number): Tensor | undefined;
  /** Like value(), but the value is required to infer the output shape. */
  requireValue(i: number, what: string): Tensor;
}

export interface StaticTensorType extends TensorType {
  readonly shape: readonly number[];
}

export interface OpDef {
  /** Output types, given static input types and any known input values. */
  infer(ctx: InferCtx): ValueType[];
  /** Reference implementation: plain float32 (int64 for integers). */
  exec(inputs: readonly (RuntimeValue | undefined)[], node: Node): RuntimeValue[];
  /** Floating-point operations (multiply-add = 2), for ops that dominate compute. */
  flops?(node: Node, inputs: readonly StaticTensorType[], outputs: readonly StaticTensorType[]): number;
}

// ---- attributes ---------------------------------------------------------------------------------

export function attrInt(node: Node, name: string, dflt: number): number {
  const v = node.attrs[name];
  return v === undefined ? dflt : (v as number);
}

export function attrFloat(node: Node, name: string, dflt: number): number {
  const v = node.attrs[name];
  return v === undefined ? dflt : (v as number);
}

export function attrString(node: Node, name: string, dflt: string): string {
  const v = node.attrs[name];
  return v === undefined ? dflt : (v as string);
}

export function attrInts(node: Node, name: string): readonly number[] | undefined {
  return node.attrs[name] as readonly number[] | undefined;
}

export function attr(node: Node, name: string): AttrValue | undefined {
  return node.attrs[name];
}

// ---- runtime value access -------------------------------------------------------------------------

export function tensorArg(inputs: readonly (RuntimeValue | undefined)[], i: number, node: Node): Tensor {
  const v = inputs[i];
  if (!v || Array.isArray(v)) fail(`${node.op} node '${node.name}'`, `a tensor at input ${i}`, v ? 'a sequence' : 'nothing');
  return v;
}

export function optionalTensor(inputs: readonly (RuntimeValue | undefined)[], i: number): Tensor | undefined {
  const v = inputs[i];
  return v && !Array.isArray(v) ? v : undefined;
}

// ---- shapes -------------------------------------------------------------------------------------

export const out = (dtype: DType, shape: readonly number[]): TensorType => tensorType(dtype, shape);

export function normAxis(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) fail(where, `an axis in [${-rank}, ${rank - 1}]`, `${axis}`);
  return a;
}

export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Numpy-style broadcast of several shapes; a mismatch is an error naming the node. */
export function broadcastShapes(shapes: readonly (readonly number[])[], where: string): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const outShape = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === outShape[o] || d === 1) continue;
      if (outShape[o] === 1) outShape[o] = d;
      else fail(where, `broadcastable shapes`, shapes.map((x) => `[${x}]`).join(' and '));
    }
  }
  return outShape;
}

/**
 * For each output element index, the flat index into an input of `shape` broadcast to `outShape`.
 * Returned as an Int32Array map (inputs here are small enough for that to be the plain way).
 */
export function broadcastIndex(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = outShape.reduce((a, b) => a * b, 1);
  const map = new Int32Array(n);
  const rank = outShape.length;
  const inStrides = new Array<number>(rank).fill(0);
  const s = strides(shape);
  for (let i = 0; i < shape.length; i++) {
    const o = rank - shape.length + i;
    inStrides[o] = shape[i] === 1 ? 0 : s[i];
  }
  const idx = new Array<number>(rank).fill(0);
  let flat = 0;
  for (let k = 0; k < n; k++) {
    map[k] = flat;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      flat += inStrides[d];
      if (idx[d] < outShape[d]) break;
      flat -= inStrides[d] * idx[d];
      idx[d] = 0;
    }
  }
  return map;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function newTensor(dtype: DType, shape: readonly number[]): Tensor {
  return Tensor.zeros(dtype, shape);
}
