/**
 * Quantization ops (domain "dc"), simulated exactly on the CPU:
 *
 *   Quantize(x){format, axis}  -> (q, scale)
 *     fp8    per row along `axis` (per token for activations, per output channel for weights):
 *            scale = fp8Scale(amax) (formats.ts: fp32(amax/448), 1 where not positive), q = e4m3(x · r)
 *            with r = fp8Reciprocal(scale) (1/scale to 24 bits), rounded to nearest even, saturated.
 *            All arithmetic in fp32, as the kernels and compiler/quant/bulk.ts do.
 *            scale has x's shape with the axis dim 1.
 *     nvfp4  blocks of 16 along `axis`; per tensor g = amax/(448·6); per block s = e4m3(amax_b/(6·g));
 *            q = e2m1(x/(s·g)). scale holds the effective block scale s·g (axis dim K/16).
 *     bf16   q = x rounded to bfloat16, scale = 1 (shape of scale: axis dim 1).
 *   Dequantize(q, scale){axis}   q · scale, the scale broadcast along `axis` (blocks of 16 for nvfp4)
 *   QLinear(xq, xs, wq, ws[, b]){transB, to, accumulate, promote}   (`to`: output dtype code, as
 *          Dequantize's)
 *          accumulate "exact" (default): Linear(Dequantize(xq, xs), Dequantize(wq, ws), b), what an
 *          FP8/FP4 tensor-core GEMM with scales computes with exact products and fp32 sums (here
 *          float64). "sm90" (fp8 only): what the sm_90a FP8 GEMM with fast accumulation computes,
 *          bit for bit (compiler/quant/tensor-core.ts): the tensor cores' sums of the codes' products
 *          in k32 steps (every `promote` codes of K restarted and added into an fp32 total; 0: never),
 *          then the own kernel's epilogue in fp32, acc·(xs·ws), or fmaf(acc·xs, ws, b) with a bias,
 *          rounded once to `to`: bit for bit where the own kernel applies the scales (a deferred
 *          GEMM, compiler/codegen/dequant.ts, rounds its raw sums to `to` first; cuBLASLt's scaled
 *          epilogue is not measured against it).
 *          epilogue "residual" (inputs xq, xs, wq, ws, b or '', gate, r; passes/fuse-gemm-residual.ts):
 *          the graph's Add(r, Mul(y, gate)) of that y, each rounded to y's type as those ops round
 *          (what the own kernel's residual epilogue computes); r has y's shape, gate broadcasts to it.
 *          "none" (or no epilogue attribute): y; "none" marks a QLinear whose residual add was given
 *          back (passes/fuse-gemm-residual.ts unfuse), so that it is not fused again.
 *          amax [start, count] (passes/fuse-vquant.ts; x [B, S, K], no residual epilogue): a second
 *          output, fp32 [B, count], the amax of |y| (y as rounded to its type) over each batch's rows of
 *          columns start .. start + count - 1: what the attention's FP8 V takes its channel scales from.
 *          With `maskKeys` > 0, input 7 is the attention's key mask (broadcast over heads and queries,
 *          `seqKv` keys) and row s of a batch is key `maskOffset` + s: the rows the mask drops (maskDrops)
 *          count as 0, as in AttentionQuantizeV.
 *          glu [lo, width] (passes/fuse-gemm-glu.ts; no residual epilogue): columns lo ..
 *          lo + 2·width - 1 of y (gate, then up) become `width` columns SwiGLU(gate, up) = silu(gate)·up
 *          of y as rounded to its type, rounded again (dc.SwiGLU's value): y [.., N - width], columns past
 *          the window moved down by width. An amax window counts columns of that y.
 *   WQLinear(x, wq, ws[, b]){transB, format: fp8, to}   weight-only: Linear(x, Dequantize(wq, ws), b),
 *          x in its own type (not quantized); what the FP8 GEMV (compiler/codegen/gemv.ts) computes:
 *          y = Σ_k x[k] · wq[n, k] · ws[n] (+ b[n]), fp32 accumulation (here float64).
 *
 * q tensors hold the decoded low-precision values (dtype float8e4m3fn / float4e2m1 / bfloat16).
 */
import { fail } from '../errors.ts';
import { type DType, dtypeFromOnnx, roundToBf16, roundToF16 } from '../ir/dtype.ts';
import type { Node } from '../ir/graph.ts';
import { Tensor } from '../ir/tensor.ts';
import { E2M1_MAX, E4M3_MAX, fp8Reciprocal, fp8Scale, roundE2M1, roundE4M3, roundE4M3Scaled } from '../quant/formats.ts';
import { e4m3Parts, sm90Dot } from '../quant/tensor-core.ts';
import { elementwiseOps } from './elementwise.ts';
import { checkKeyMaskShape, fusedOps, keyMaskKeep } from './fused.ts';
import { type OpDef, type RuntimeValue, attrInt, attrString, broadcastShapes, newTensor, normAxis, optionalTensor, out, tensorArg } from './op.ts';

export type QuantFormat = 'fp8' | 'nvfp4' | 'bf16';
export const NVFP4_BLOCK = 16;

const Q_DTYPE: Record<QuantFormat, DType> = { fp8: 'float8e4m3fn', nvfp4: 'float4e2m1', bf16: 'bfloat16' };

function formatOf(node: Node, where: string): QuantFormat {
  const f = attrString(node, 'format', 'fp8');
  if (!(f in Q_DTYPE)) fail(where, 'a quantization format fp8, nvfp4 or bf16', `'${f}'`);
  return f as QuantFormat;
}

function scaleShape(shape: readonly number[], axis: number, format: QuantFormat, where: string): number[] {
  if (format === 'nvfp4' && shape[axis] % NVFP4_BLOCK) fail(where, `a quantized axis that is a multiple of ${NVFP4_BLOCK} for nvfp4`, `[${shape}] along axis ${axis}`);
  return shape.map((d, i) => (i !== axis ? d : format === 'nvfp4' ? d / NVFP4_BLOCK : 1));
}

/** Iterates the rows along `axis`: calls fn(indices of one row) for every row. */
function forEachRow(shape: readonly number[], axis: number, fn: (base: number, stride: number, row: number) => void): void {
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) fn(o * shape[axis] * inner + i, inner, o * inner + i);
}

export function quantize(x: Tensor, format: QuantFormat, axis: number): [Tensor, Tensor] {
  const k = x.shape[axis];
  const q = newTensor(Q_DTYPE[format], x.shape);
  const sShape = scaleShape(x.shape, axis, format, 'Quantize');
  const scale = newTensor('float32', sShape);
  const X = x.toFloat32(), Q = q.data as Float32Array, S = scale.data as Float32Array;
  if (format === 'bf16') {
    for (let i = 0; i < x.size; i++) Q[i] = roundToBf16(X[i]);
    S.fill(1);
    return [q, scale];
  }
  // fp32 arithmetic throughout, as the kernels do: scales and the product x · fp8Reciprocal(scale) (fp8;
  // nvfp4: the quotient x / scale) are rounded to fp32 before encoding; NaN does not take part in the amax.
  let global = 1;
  if (format === 'nvfp4') {
    let amax = 0;
    for (let i = 0; i < x.size; i++) { const a = Math.abs(X[i]); if (a > amax) amax = a; }
    global = amax > 0 ? Math.fround(amax / (E4M3_MAX * E2M1_MAX)) : 1;
  }
  const blocks = format === 'nvfp4' ? k / NVFP4_BLOCK : 1, blockLen = k / blocks;
  const sixG = Math.fround(E2M1_MAX * global);
  forEachRow(x.shape, axis, (base, stride, row) => {
    for (let b = 0; b < blocks; b++) {
      let amax = 0;
      for (let j = b * blockLen; j < (b + 1) * blockLen; j++) { const a = Math.abs(X[base + j * stride]); if (a > amax) amax = a; }
      // Effective scale: fp8 fp8Scale(amax); nvfp4 e4m3(amax/(6g))·g.
      const s = format === 'fp8' ? fp8Scale(amax) : Math.fround(roundE4M3(Math.fround(amax / sixG)) * global);
      const sIndex = format === 'fp8' ? row : nvfp4ScaleIndex(x.shape, axis, row, b, blocks);
      S[sIndex] = s;
      // fp8: the product with fp8Reciprocal(s); nvfp4: the quotient x / s.
      const r = format === 'fp8' ? fp8Reciprocal(s) : 0;
      for (let j = b * blockLen; j < (b + 1) * blockLen; j++) {
        const x = X[base + j * stride];
        Q[base + j * stride] = format === 'fp8' ? roundE4M3Scaled(x, r) : s === 0 ? 0 : roundE2M1(Math.fround(x / s));
      }
    }
  });
  return [q, scale];
}

/** Flat index of block b of `row` in the scale tensor (axis dim = blocks). */
function nvfp4ScaleIndex(shape: readonly number[], axis: number, row: number, b: number, blocks: number): number {
  const inner = shape.slice(axis + 1).reduce((a, c) => a * c, 1);
  const o = Math.floor(row / inner), i = row % inner;
  return (o * blocks + b) * inner + i;
}

export function dequantize(q: Tensor, scale: Tensor, axis: number, outDtype: DType): Tensor {
  const k = q.shape[axis];
  const blocks = scale.shape[axis];
  const y = newTensor(outDtype, q.shape);
  const Q = q.toFloat32(), S = scale.toFloat32(), Y = y.data as Float32Array;
  const blockLen = k / blocks;
  forEachRow(q.shape, axis, (base, stride, row) => {
    for (let j = 0; j < k; j++) {
      const b = Math.floor(j / blockLen);
      Y[base + j * stride] = Q[base + j * stride] * S[blocks === 1 ? row : nvfp4ScaleIndex(q.shape, axis, row, b, blocks)];
    }
  });
  return y;
}

/** The `to` attribute (an ONNX dtype code) as a DType. */
const toDtype = (node: Node, dflt: DType): DType => (node.attrs.to !== undefined ? dtypeFromOnnx(node.attrs.to as number)! : dflt);

const quantizeOp: OpDef = {
  infer: (c) => {
    const x = c.input(0);
    const format = formatOf(c.node, c.where);
    const axis = normAxis(attrInt(c.node, 'axis', -1), x.shape.length, c.where);
    return [out(Q_DTYPE[format], x.shape), out('float32', scaleShape(x.shape, axis, format, c.where))];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    return quantize(x, formatOf(node, node.op), normAxis(attrInt(node, 'axis', -1), x.shape.length, node.op));
  },
};

const dequantizeOp: OpDef = {
  infer: (c) => [out(toDtype(c.node, 'float32'), c.input(0).shape)],
  exec: (ins, node) => {
    const q = tensorArg(ins, 0, node);
    return [dequantize(q, tensorArg(ins, 1, node), normAxis(attrInt(node, 'axis', -1), q.shape.length, node.op), toDtype(node, 'float32'))];
  },
};

/** Whether a QLinear carries the residual epilogue (inputs 5 and 6: the gate and r). */
export const isResidualQLinear = (node: Node) => node.domain === 'dc' && node.op === 'QLinear' && node.attrs.epilogue === 'residual';

/**
 * The rows of a residual epilogue's gate against y [.., N]: a gate of [B, 1.., N] (y's rank, B its first
 * dim) gives each batch's rows (M / B of them) its row; [1.., N] (rank at most y's) one row for all.
 * Undefined for any other shape (a gate by token, say): the own kernel reads it by batch rows only.
 */
export function residualGateLayout(gate: readonly number[], y: readonly number[]): { batches: number; rowsPerBatch: number } | undefined {
  const n = y.at(-1)!, m = y.slice(0, -1).reduce((a, b) => a * b, 1);
  if (gate.at(-1) !== n || gate.length > y.length) return undefined;
  const batches = gate.length === y.length && gate.length > 1 ? gate[0] : 1;
  if ((batches !== 1 && batches !== y[0]) || !gate.slice(batches > 1 ? 1 : 0, -1).every((d) => d === 1)) return undefined;
  return { batches, rowsPerBatch: m / batches };
}

/** QLinear: activations quantized along their last axis, weights along K (axis 1 if transB). */
const qlinear: OpDef = {
  infer: (c) => {
    const y = fusedOps.Linear.infer({ ...c, input: (i: number) => c.input(i === 0 ? 0 : i === 1 ? 2 : 4), has: (i: number) => c.has(i === 0 ? 0 : i === 1 ? 2 : 4) });
    const full = (y[0] as { shape: readonly number[] }).shape, dtype = toDtype(c.node, 'float32');
    const epilogue = attrString(c.node, 'epilogue', 'none');
    const glu = gluWindow(c.node);
    if (glu && (epilogue !== 'none' || !(Number.isInteger(glu.lo) && Number.isInteger(glu.width) && glu.lo >= 0 && glu.width >= 1 && glu.lo + 2 * glu.width <= full.at(-1)!))) fail(c.where, `a glu window of 2 x width columns within [${full}] (no residual epilogue)`, `[${glu.lo}, ${glu.width}] with epilogue '${epilogue}'`);
    const shape = glu ? [...full.slice(0, -1), full.at(-1)! - glu.width] : full, type = out(dtype, shape);
    const amax = amaxWindow(c.node);
    if (amax) {
      if (epilogue !== 'none' || shape.length !== 3 || amax.start < 0 || amax.count < 1 || amax.start + amax.count > shape[2]) fail(c.where, `an amax window of columns within [${shape}] (y [B, S, N], no residual epilogue)`, `[${amax.start}, ${amax.count}] with epilogue '${epilogue}'`);
      const { maskKeys: keys, seqKv: kv, maskOffset: offset } = amax;
      if (keys > 0) {
        if (!c.has(7) || kv < keys || offset < 0 || offset + shape[1] > kv) fail(c.where, `a key mask (input 7) of seqKv >= maskKeys keys holding rows maskOffset .. + ${shape[1]}`, `seqKv ${kv}, maskKeys ${keys}, maskOffset ${offset}${c.has(7) ? '' : ', no mask'}`);
        checkKeyMaskShape(c.input(7).shape, shape[0], kv, c.where);
      }
      return [type, out('float32', [shape[0], amax.count])];
    }
    if (epilogue === 'none') return [type];
    if (epilogue !== 'residual' || !c.has(5) || !c.has(6)) fail(c.where, 'epilogue "residual" with a gate and a residual input (inputs 5 and 6, from 0)', `'${epilogue}' with ${c.node.inputs.length} inputs`);
    const gate = c.input(5), r = c.input(6);
    if (gate.dtype !== dtype || broadcastShapes([shape, gate.shape], c.where).join() !== shape.join()) fail(c.where, `a gate of ${dtype} broadcasting to [${shape}]`, `${gate.dtype}[${gate.shape}]`);
    if (r.dtype !== dtype || r.shape.join() !== shape.join()) fail(c.where, `a residual of the output's type ${dtype}[${shape}]`, `${r.dtype}[${r.shape}]`);
    return [type];
  },
  exec: (ins, node) => {
    if (isResidualQLinear(node)) {
      // y, then the graph's Mul(y, gate) and Add(r, ·), each rounded to y's type.
      const [y] = qlinear.exec([...ins.slice(0, 5)], { ...node, inputs: node.inputs.slice(0, 5), attrs: { ...node.attrs, epilogue: 'none' } }) as Tensor[];
      const [m] = elementwiseOps.Mul.exec([y, tensorArg(ins, 5, node)], { ...node, op: 'Mul' }) as Tensor[];
      return elementwiseOps.Add.exec([tensorArg(ins, 6, node), m], { ...node, op: 'Add' });
    }
    const glu = gluWindow(node), amax = amaxWindow(node);
    if (glu || amax) {
      // The plain GEMM's y, then the GLU window over it, then the amax of what the node outputs.
      const { glu: _g, amax: _a, ...attrs } = node.attrs;
      const [raw] = qlinear.exec(ins.slice(0, 5), { ...node, inputs: node.inputs.slice(0, 5), attrs }) as Tensor[];
      const y = glu ? applyGlu(raw, glu, node) : raw;
      return amax ? [y, columnAmax(y, amax, node, optionalTensor(ins, 7))] : [y];
    }
    const transB = attrInt(node, 'transB', 0) === 1;
    const xq = tensorArg(ins, 0, node), wq = tensorArg(ins, 2, node);
    const accumulate = attrString(node, 'accumulate', 'exact');
    if (accumulate === 'sm90') return [sm90Linear(ins, node, transB)];
    if (accumulate !== 'exact') fail(`QLinear '${node.name}'`, 'accumulate "exact" or "sm90"', `'${accumulate}'`);
    const x = dequantize(xq, tensorArg(ins, 1, node), xq.shape.length - 1, 'float32');
    const w = dequantize(wq, tensorArg(ins, 3, node), transB ? 1 : 0, 'float32');
    const bias = optionalTensor(ins, 4);
    const [y] = fusedOps.Linear.exec([x, w, bias], { ...node, op: 'Linear', inputs: bias ? ['x', 'w', 'b'] : ['x', 'w'] }) as Tensor[];
    return [new Tensor(toDtype(node, 'float32'), y.shape, y.data)];
  },
  flops: (node, [xq, , wq]) => fusedOps.Linear.flops!(node, [xq, wq], []),
};

/** A QLinear's amax window: its attributes amax [start, count] and (0 without a mask) maskKeys, maskOffset, seqKv; or undefined. */
export interface AmaxAttrs { start: number; count: number; maskKeys: number; maskOffset: number; seqKv: number }
export function amaxWindow(node: Node): AmaxAttrs | undefined {
  const a = node.attrs.amax as readonly number[] | undefined;
  return a ? { start: a[0], count: a[1], maskKeys: attrInt(node, 'maskKeys', 0), maskOffset: attrInt(node, 'maskOffset', 0), seqKv: attrInt(node, 'seqKv', 0) } : undefined;
}

/** A glu window: gate columns lo .. lo + width - 1, up columns lo + width .. lo + 2·width - 1 (of y; of W's rows in the GEMM). */
export interface GluWindow { lo: number; width: number }

/** A QLinear's glu window (its attribute glu [lo, width]), or undefined. */
export function gluWindow(node: Node): GluWindow | undefined {
  const g = node.attrs.glu as readonly number[] | undefined;
  return g ? { lo: g[0], width: g[1] } : undefined;
}

/** A QLinear's GEMM N (W's rows) from its y's last dim: a glu window makes y narrower by its width. */
export const qlinearGemmN = (node: Node, yWidth: number) => yWidth + (gluWindow(node)?.width ?? 0);

/** y with its glu window's 2 x width columns replaced by SwiGLU's width columns (dc.SwiGLU's value and rounding). */
function applyGlu(y: Tensor, { lo: start, width }: GluWindow, node: Node): Tensor {
  const n = y.shape.at(-1)!, rows = y.size / n, n2 = n - width;
  const pair = newTensor(y.dtype, [rows, 2 * width]);
  for (let r = 0; r < rows; r++) for (let c = 0; c < 2 * width; c++) pair.set(r * 2 * width + c, y.get(r * n + start + c));
  const [h] = fusedOps.SwiGLU.exec([pair], { ...node, op: 'SwiGLU', inputs: ['x'] }) as Tensor[];
  const out = newTensor(y.dtype, [...y.shape.slice(0, -1), n2]);
  for (let r = 0; r < rows; r++) for (let c = 0; c < n2; c++) {
    out.set(r * n2 + c, c < start ? y.get(r * n + c) : c < start + width ? h.get(r * width + c - start) : y.get(r * n + c + width));
  }
  return out;
}

/** QLinear's amax output: per batch, the amax of |y| over the rows the key mask keeps, in columns start .. start + count - 1. */
function columnAmax(y: Tensor, { start, count, maskKeys: keys, maskOffset: offset, seqKv }: AmaxAttrs, node: Node, mask: Tensor | undefined): Tensor {
  const [b, s, n] = y.shape;
  const keep = keys > 0 && mask ? keyMaskKeep(mask, b, seqKv, `QLinear '${node.name}' key mask`) : undefined;
  const a = newTensor('float32', [b, count]);
  for (let bi = 0; bi < b; bi++) for (let c = 0; c < count; c++) {
    let m = 0;
    for (let r = 0; r < s; r++) {
      if (keep && offset + r < keys && !keep(bi, offset + r)) continue;
      m = Math.max(m, Math.abs(y.get((bi * s + r) * n + start + c)));
    }
    a.set(bi * count + c, m);
  }
  return a;
}

/** QLinear{accumulate: "sm90"}: the tensor-core model's sums of the codes, then the own kernel's epilogue. */
function sm90Linear(ins: readonly (RuntimeValue | undefined)[], node: Node, transB: boolean): Tensor {
  const where = `QLinear '${node.name}'`;
  if (attrString(node, 'format', 'fp8') !== 'fp8') fail(where, 'format fp8 with accumulate "sm90" (the FP8 tensor cores)', `'${attrString(node, 'format', 'fp8')}'`);
  const xq = tensorArg(ins, 0, node), xs = tensorArg(ins, 1, node), wq = tensorArg(ins, 2, node), ws = tensorArg(ins, 3, node);
  const bias = optionalTensor(ins, 4);
  const promote = attrInt(node, 'promote', 0);
  const k = xq.shape[xq.shape.length - 1], m = xq.size / k;
  const n = transB ? wq.shape[0] : wq.shape[1];
  if ((transB ? wq.shape[1] : wq.shape[0]) !== k || wq.shape.length !== 2) fail(where, `a weight of [${transB ? `N, ${k}` : `${k}, N`}]`, `[${wq.shape}]`);
  if (xs.size !== m || ws.size !== n) fail(where, `${m} token scales and ${n} channel scales`, `${xs.size} and ${ws.size}`);
  const X = e4m3Parts(xq.toFloat32(), `${where} input '${node.inputs[0]}'`);
  // Rows of W along K (transposed when W is [K, N]).
  const Wf = wq.toFloat32(), Wk = transB ? Wf : new Float32Array(n * k);
  if (!transB) for (let kk = 0; kk < k; kk++) for (let j = 0; j < n; j++) Wk[j * k + kk] = Wf[kk * n + j];
  const W = e4m3Parts(Wk, `${where} input '${node.inputs[2]}'`);
  const to = toDtype(node, 'float32');
  const round = to === 'bfloat16' ? roundToBf16 : to === 'float16' ? roundToF16 : Math.fround;
  const y = newTensor(to, [...xq.shape.slice(0, -1), n]);
  for (let i = 0; i < m; i++) {
    const sx = xs.get(i);
    for (let j = 0; j < n; j++) {
      const acc = sm90Dot(X, i * k, W, j * k, k, promote, where);
      // fp32 as the epilogue: fmaf(acc·xs, ws, b) or acc·(xs·ws) (a product of two fp32 values is exact in a double).
      const v = bias ? fmaf(Math.fround(acc * sx), ws.get(j), bias.get(j)) : Math.fround(acc * Math.fround(sx * ws.get(j)));
      y.set(i * n + j, round(v));
    }
  }
  return y;
}

const F64 = new Float64Array(1), U32 = new Uint32Array(F64.buffer);

/**
 * fmaf: a·b + c for fp32 a, b, c, rounded once to fp32. a·b is exact in a double; the sum p + c is
 * not always, and rounding it to a double and then to fp32 can differ from one rounding (a double
 * on an fp32 midpoint). So the sum is rounded to odd instead (its error from TwoSum: toward zero, the
 * last bit set when inexact), which a double's 29 extra bits make safe to round again.
 */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b, s = p + c;
  const t = s - p, err = (p - (s - t)) + (c - t);
  if (err === 0 || !Number.isFinite(s)) return Math.fround(s);
  F64[0] = s;
  if ((U32[0] & 1) === 0) {
    // s even: |p + c| above |s| -> the odd double just above in magnitude; below -> just below.
    if (err > 0 === s > 0) U32[0] |= 1;
    else if (U32[0] === 0) { U32[0] = 0xffffffff; U32[1]--; }
    else U32[0]--;
  }
  return Math.fround(F64[0]);
}

/** WQLinear: only the weight is quantized (along K, per output channel); x is read as it is. */
const wqlinear: OpDef = {
  infer: (c) => {
    const where = c.where;
    if (attrString(c.node, 'format', 'fp8') !== 'fp8') fail(where, 'a weight-only GEMM of format fp8', `'${attrString(c.node, 'format', 'fp8')}'`);
    if (c.input(1).dtype !== 'float8e4m3fn') fail(where, 'e4m3 weight codes', c.input(1).dtype);
    const y = fusedOps.Linear.infer({ ...c, input: (i: number) => c.input(i === 0 ? 0 : i === 1 ? 1 : 3), has: (i: number) => c.has(i === 0 ? 0 : i === 1 ? 1 : 3) });
    return [out(toDtype(c.node, c.input(0).dtype), (y[0] as { shape: readonly number[] }).shape)];
  },
  exec: (ins, node) => {
    const transB = attrInt(node, 'transB', 0) === 1;
    const x = tensorArg(ins, 0, node), wq = tensorArg(ins, 1, node);
    const w = dequantize(wq, tensorArg(ins, 2, node), transB ? 1 : 0, 'float32');
    const bias = optionalTensor(ins, 3);
    const [y] = fusedOps.Linear.exec([x, w, bias], { ...node, op: 'Linear', inputs: bias ? ['x', 'w', 'b'] : ['x', 'w'] }) as Tensor[];
    return [new Tensor(toDtype(node, x.dtype), y.shape, y.data)];
  },
  flops: (node, [x, wq]) => fusedOps.Linear.flops!(node, [x, wq], []),
};

export const quantOps: Record<string, OpDef> = { Quantize: quantizeOp, Dequantize: dequantizeOp, QLinear: qlinear, WQLinear: wqlinear };
