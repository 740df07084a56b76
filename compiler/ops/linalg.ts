/**
 * Compute-heavy ops: MatMul (numpy semantics, batch broadcasting), Gemm, Conv (N-d, groups,
 * dilation, explicit or SAME padding). Reference loops accumulate in double, store float32.
 */
import { fail } from '../errors.ts';
import type { Node } from '../ir/graph.ts';
import type { Tensor } from '../ir/tensor.ts';
import {
  type OpDef, attrFloat, attrInt, attrInts, attrString, broadcastIndex, broadcastShapes, newTensor, optionalTensor, out,
  strides, tensorArg,
} from './op.ts';

interface MatMulPlan { batch: number[]; m: number; k: number; n: number; outShape: number[]; aBatch: number[]; bBatch: number[] }

function matmulPlan(a: readonly number[], b: readonly number[], where: string): MatMulPlan {
  if (a.length === 0 || b.length === 0) fail(where, 'MatMul inputs of rank >= 1', `[${a}] x [${b}]`);
  const a2 = a.length === 1 ? [1, a[0]] : a.slice();
  const b2 = b.length === 1 ? [b[0], 1] : b.slice();
  const m = a2[a2.length - 2], k = a2[a2.length - 1], k2 = b2[b2.length - 2], n = b2[b2.length - 1];
  if (k !== k2) fail(where, `inner dimensions to agree`, `[${a}] x [${b}]`);
  const aBatch = a2.slice(0, -2), bBatch = b2.slice(0, -2);
  const batch = broadcastShapes([aBatch, bBatch], where);
  const outShape = [...batch, ...(a.length === 1 ? [] : [m]), ...(b.length === 1 ? [] : [n])];
  return { batch, m, k, n, outShape, aBatch, bBatch };
}

function matmul(a: Tensor, b: Tensor, where: string): Tensor {
  const p = matmulPlan(a.shape, b.shape, where);
  const y = newTensor(a.dtype, p.outShape);
  const batches = p.batch.reduce((x, z) => x * z, 1);
  const aMap = broadcastIndex(p.aBatch, p.batch), bMap = broadcastIndex(p.bBatch, p.batch);
  // Integer operands are read as doubles (exact below 2^53); float32 storage as-is.
  const asF = (t: Tensor) => (t.data instanceof Float32Array ? t.data : Float64Array.from(t.toNumbers()));
  const A = asF(a), B = asF(b);
  const { m, k, n } = p;
  const row = new Float64Array(n);
  for (let t = 0; t < batches; t++) {
    const aOff = aMap[t] * m * k, bOff = bMap[t] * k * n, yOff = t * m * n;
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const av = A[aOff + i * k + kk];
        const bRow = bOff + kk * n;
        for (let j = 0; j < n; j++) row[j] += av * B[bRow + j];
      }
      for (let j = 0; j < n; j++) y.set(yOff + i * n + j, row[j]);
    }
  }
  return y;
}

const matMul: OpDef = {
  infer: (c) => [out(c.input(0).dtype, matmulPlan(c.input(0).shape, c.input(1).shape, c.where).outShape)],
  exec: (ins, node) => [matmul(tensorArg(ins, 0, node), tensorArg(ins, 1, node), node.op)],
  flops: (_n, [a, b]) => {
    const p = matmulPlan(a.shape, b.shape, 'MatMul');
    return 2 * p.batch.reduce((x, z) => x * z, 1) * p.m * p.n * p.k;
  },
};

function gemmDims(node: Node, a: readonly number[], b: readonly number[], where: string) {
  if (a.length !== 2 || b.length !== 2) fail(where, 'rank-2 Gemm inputs', `[${a}] and [${b}]`);
  const ta = attrInt(node, 'transA', 0), tb = attrInt(node, 'transB', 0);
  const [m, k] = ta ? [a[1], a[0]] : [a[0], a[1]];
  const [k2, n] = tb ? [b[1], b[0]] : [b[0], b[1]];
  if (k !== k2) fail(where, 'inner dimensions to agree', `[${a}]${ta ? 'ᵀ' : ''} x [${b}]${tb ? 'ᵀ' : ''}`);
  return { m, k, n, ta, tb };
}

const gemm: OpDef = {
  infer: (c) => {
    const { m, n } = gemmDims(c.node, c.input(0).shape, c.input(1).shape, c.where);
    if (c.has(2)) broadcastShapes([c.input(2).shape, [m, n]], c.where);
    return [out(c.input(0).dtype, [m, n])];
  },
  exec: (ins, node) => {
    const a = tensorArg(ins, 0, node), b = tensorArg(ins, 1, node), bias = optionalTensor(ins, 2);
    const { m, k, n, ta, tb } = gemmDims(node, a.shape, b.shape, node.op);
    const alpha = attrFloat(node, 'alpha', 1), beta = attrFloat(node, 'beta', 1);
    // Integer operands are read as doubles (exact below 2^53); float32 storage as-is.
  const asF = (t: Tensor) => (t.data instanceof Float32Array ? t.data : Float64Array.from(t.toNumbers()));
  const A = asF(a), B = asF(b);
    const y = newTensor(a.dtype, [m, n]);
    const biasMap = bias ? broadcastIndex(bias.shape, [m, n]) : undefined;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let kk = 0; kk < k; kk++) acc += A[ta ? kk * m + i : i * k + kk] * B[tb ? j * k + kk : kk * n + j];
        y.set(i * n + j, alpha * acc + (bias ? beta * bias.get(biasMap![i * n + j]) : 0));
      }
    }
    return [y];
  },
  flops: (node, [a, b]) => {
    const { m, k, n } = gemmDims(node, a.shape, b.shape, 'Gemm');
    return 2 * m * n * k;
  },
};

interface ConvPlan { spatial: number; kernel: number[]; strides: number[]; dilations: number[]; padsBegin: number[]; outShape: number[]; group: number }

function convPlan(node: Node, x: readonly number[], w: readonly number[], where: string): ConvPlan {
  const spatial = x.length - 2;
  if (w.length !== x.length) fail(where, `a weight of rank ${x.length}`, `[${w}]`);
  const group = attrInt(node, 'group', 1);
  if (x[1] !== w[1] * group) fail(where, `input channels ${w[1] * group} (weight [${w}], group ${group})`, `${x[1]} in [${x}]`);
  const kernel = attrInts(node, 'kernel_shape')?.slice() ?? w.slice(2);
  const st = attrInts(node, 'strides')?.slice() ?? new Array(spatial).fill(1);
  const dil = attrInts(node, 'dilations')?.slice() ?? new Array(spatial).fill(1);
  let pads = attrInts(node, 'pads')?.slice() ?? new Array(2 * spatial).fill(0);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  const outSpatial: number[] = [];
  for (let i = 0; i < spatial; i++) {
    const eff = (kernel[i] - 1) * dil[i] + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const o = Math.ceil(x[i + 2] / st[i]);
      const total = Math.max(0, (o - 1) * st[i] + eff - x[i + 2]);
      const small = Math.floor(total / 2);
      if (i === 0) pads = new Array(2 * spatial).fill(0);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + spatial] = total - pads[i];
    } else if (autoPad === 'VALID') {
      pads[i] = pads[i + spatial] = 0;
    }
    outSpatial.push(Math.floor((x[i + 2] + pads[i] + pads[i + spatial] - eff) / st[i]) + 1);
  }
  return { spatial, kernel, strides: st, dilations: dil, padsBegin: pads.slice(0, spatial), outShape: [x[0], w[0], ...outSpatial], group };
}

function conv(x: Tensor, w: Tensor, bias: Tensor | undefined, node: Node): Tensor {
  const p = convPlan(node, x.shape, w.shape, node.op);
  const y = newTensor(x.dtype, p.outShape);
  const X = x.toFloat32(), W = w.toFloat32(), Y = y.data as Float32Array;
  const [batch, cout] = p.outShape;
  const cinG = w.shape[1], coutG = cout / p.group;
  const inSp = x.shape.slice(2), outSp = p.outShape.slice(2);
  const inStr = strides(inSp), kStr = strides(p.kernel);
  const inSize = inSp.reduce((a, b) => a * b, 1), outSize = outSp.reduce((a, b) => a * b, 1);
  const kSize = p.kernel.reduce((a, b) => a * b, 1);
  // Precompute, per output position and kernel tap, the input offset (or -1 when in padding).
  const taps = new Int32Array(outSize * kSize);
  const oIdx = new Array<number>(p.spatial).fill(0);
  for (let o = 0; o < outSize; o++) {
    let r = o;
    for (let d = p.spatial - 1; d >= 0; d--) { oIdx[d] = r % outSp[d]; r = Math.floor(r / outSp[d]); }
    for (let t = 0; t < kSize; t++) {
      let off = 0, valid = true;
      for (let d = 0; d < p.spatial; d++) {
        const kd = Math.floor(t / kStr[d]) % p.kernel[d];
        const i = oIdx[d] * p.strides[d] - p.padsBegin[d] + kd * p.dilations[d];
        if (i < 0 || i >= inSp[d]) { valid = false; break; }
        off += i * inStr[d];
      }
      taps[o * kSize + t] = valid ? off : -1;
    }
  }
  const acc = new Float64Array(outSize);
  for (let b = 0; b < batch; b++) {
    for (let co = 0; co < cout; co++) {
      const g = Math.floor(co / coutG);
      acc.fill(bias ? bias.get(co) : 0);
      for (let ci = 0; ci < cinG; ci++) {
        const xBase = (b * x.shape[1] + g * cinG + ci) * inSize;
        const wBase = (co * cinG + ci) * kSize;
        for (let t = 0; t < kSize; t++) {
          const wv = W[wBase + t];
          if (wv === 0) continue;
          for (let o = 0; o < outSize; o++) {
            const off = taps[o * kSize + t];
            if (off >= 0) acc[o] += wv * X[xBase + off];
          }
        }
      }
      Y.set(acc, (b * cout + co) * outSize);
    }
  }
  return y;
}

const convOp: OpDef = {
  infer: (c) => [out(c.input(0).dtype, convPlan(c.node, c.input(0).shape, c.input(1).shape, c.where).outShape)],
  exec: (ins, node) => [conv(tensorArg(ins, 0, node), tensorArg(ins, 1, node), optionalTensor(ins, 2), node)],
  flops: (_node, [, w], [y]) => 2 * y.shape.reduce((a, b) => a * b, 1) * w.shape.slice(1).reduce((a, b) => a * b, 1),
};

export const linalgOps: Record<string, OpDef> = { MatMul: matMul, Gemm: gemm, Conv: convOp };
