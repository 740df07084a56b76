/**
 * Resize (opset 18/19): nearest and (bi/tri)linear interpolation over any axes, from `scales` or
 * `sizes`, with the coordinate transformation modes exporters emit. Cubic and antialias are
 * rejected with a clear error (no model here uses them).
 */
import { fail } from '../errors.ts';
import type { Node } from '../ir/graph.ts';
import type { Tensor } from '../ir/tensor.ts';
import { type OpDef, attrInt, attrString, newTensor, optionalTensor, out, strides, tensorArg } from './op.ts';

function outputShape(shape: readonly number[], scales: number[] | undefined, sizes: number[] | undefined, where: string) {
  if (sizes && sizes.length) {
    if (sizes.length !== shape.length) fail(where, `${shape.length} sizes`, `[${sizes}]`);
    return { outShape: sizes, scales: sizes.map((s, i) => s / shape[i]) };
  }
  if (!scales || scales.length !== shape.length) fail(where, `${shape.length} scales or sizes`, scales ? `[${scales}]` : 'neither');
  return { outShape: shape.map((d, i) => Math.floor(d * scales[i])), scales };
}

function checkModes(node: Node, where: string): void {
  const mode = attrString(node, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear') fail(where, "Resize mode 'nearest' or 'linear'", `'${mode}'`);
  if (attrInt(node, 'antialias', 0)) fail(where, 'Resize without antialias', 'antialias=1');
  const keep = attrString(node, 'keep_aspect_ratio_policy', 'stretch');
  if (keep !== 'stretch') fail(where, "keep_aspect_ratio_policy 'stretch'", `'${keep}'`);
}

/** Input coordinate of output index `o` along an axis. */
function sourceCoord(mode: string, o: number, scale: number, inLen: number, outLen: number): number {
  switch (mode) {
    case 'asymmetric': return o / scale;
    case 'align_corners': return outLen === 1 ? 0 : (o * (inLen - 1)) / (outLen - 1);
    case 'pytorch_half_pixel': return outLen > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case 'half_pixel': return (o + 0.5) / scale - 0.5;
    default: return fail('Resize', 'a supported coordinate_transformation_mode', `'${mode}'`);
  }
}

function nearestIndex(mode: string, x: number): number {
  switch (mode) {
    case 'floor': return Math.floor(x);
    case 'ceil': return Math.ceil(x);
    case 'round_prefer_ceil': return Math.floor(x + 0.5);
    default: return x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x); // round_prefer_floor
  }
}

const resize: OpDef = {
  infer: (c) => {
    checkModes(c.node, c.where);
    const x = c.input(0);
    const scales = c.has(2) ? c.requireValue(2, 'scales').toNumbers() : undefined;
    const sizes = c.has(3) ? c.requireValue(3, 'sizes').toNumbers() : undefined;
    return [out(x.dtype, outputShape(x.shape, scales, sizes, c.where).outShape)];
  },
  exec: (ins, node) => {
    const x = tensorArg(ins, 0, node);
    const { outShape, scales } = outputShape(x.shape, optionalTensor(ins, 2)?.toNumbers(), optionalTensor(ins, 3)?.toNumbers(), node.op);
    const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
    const linear = attrString(node, 'mode', 'nearest') === 'linear';
    const nearestMode = attrString(node, 'nearest_mode', 'round_prefer_floor');
    const rank = x.shape.length;
    // Per axis, per output index: (low index, high index, weight of high).
    const taps = outShape.map((len, a) => Array.from({ length: len }, (_, o) => {
      const inLen = x.shape[a];
      const src = sourceCoord(ctm, o, scales[a], inLen, len);
      if (!linear) { const i = Math.min(Math.max(nearestIndex(nearestMode, src), 0), inLen - 1); return [i, i, 0]; }
      const c = Math.min(Math.max(src, 0), inLen - 1);
      const lo = Math.floor(c), hi = Math.min(lo + 1, inLen - 1);
      return [lo, hi, c - lo];
    }));
    const s = strides(x.shape);
    const y = newTensor(x.dtype, outShape);
    const X: Tensor = x;
    const idx = new Array<number>(rank).fill(0);
    for (let k = 0; k < y.size; k++) {
      // Sum over the 2^rank corners (weights 0 drop out; nearest has a single corner).
      let v = 0;
      for (let corner = 0; corner < 1 << rank; corner++) {
        let w = 1, flat = 0;
        for (let a = 0; a < rank; a++) {
          const [lo, hi, t] = taps[a][idx[a]];
          const high = (corner >> a) & 1;
          w *= high ? t : 1 - t;
          flat += (high ? hi : lo) * s[a];
          if (w === 0) break;
        }
        if (w !== 0) v += w * X.get(flat);
      }
      y.set(k, v);
      for (let d = rank - 1; d >= 0; d--) {
        if (++idx[d] < outShape[d]) break;
        idx[d] = 0;
      }
    }
    return [y];
  },
};

export const resizeOps: Record<string, OpDef> = { Resize: resize };
