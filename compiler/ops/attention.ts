/**
 * ONNX Attention (opset 23): softmax(Q·Kᵀ·scale + mask [+ causal]) · V, with 3-D (B, S, H·D) or
 * 4-D (B, H, S, D) layouts, grouped-query heads (q heads a multiple of kv heads), boolean or additive
 * masks broadcast to (B, Hq, Sq, Skv), optional softcap, past key/value concatenation.
 */
import { fail } from '../errors.ts';
import type { Node } from '../ir/graph.ts';
import type { Tensor } from '../ir/tensor.ts';
import {
  type OpDef, type StaticTensorType, attrFloat, attrInt, broadcastIndex, newTensor, optionalTensor, out, tensorArg,
} from './op.ts';

interface Layout { b: number; heads: number; seq: number; dim: number }

/** Reads (B, H, S, D) from a 3-D or 4-D shape; 3-D needs the head count attribute. */
function layoutOf(shape: readonly number[], heads: number, what: string, where: string): Layout {
  if (shape.length === 4) return { b: shape[0], heads: shape[1], seq: shape[2], dim: shape[3] };
  if (shape.length === 3) {
    if (!heads || shape[2] % heads) fail(where, `${what} hidden size divisible by its num_heads attribute`, `[${shape}] with ${heads} heads`);
    return { b: shape[0], heads, seq: shape[1], dim: shape[2] / heads };
  }
  return fail(where, `a 3-D or 4-D ${what}`, `[${shape}]`);
}

function plan(node: Node, q: readonly number[], k: readonly number[], v: readonly number[], where: string) {
  const Q = layoutOf(q, attrInt(node, 'q_num_heads', 0), 'Q', where);
  const K = layoutOf(k, attrInt(node, 'kv_num_heads', 0), 'K', where);
  const V = layoutOf(v, attrInt(node, 'kv_num_heads', 0), 'V', where);
  if (Q.heads % K.heads) fail(where, `q heads a multiple of kv heads`, `${Q.heads} and ${K.heads}`);
  if (Q.dim !== K.dim || K.seq !== V.seq) fail(where, 'matching Q/K head size and K/V lengths', `Q [${q}], K [${k}], V [${v}]`);
  const outShape = q.length === 4 ? [Q.b, Q.heads, Q.seq, V.dim] : [Q.b, Q.seq, Q.heads * V.dim];
  return { Q, K, V, outShape };
}

const attention: OpDef = {
  infer: (c) => {
    if (c.has(4) || c.has(5)) fail(c.where, 'Attention without past key/value (no KV cache in diffusion)', 'past_key/past_value inputs');
    const q = c.input(0);
    const { outShape } = plan(c.node, q.shape, c.input(1).shape, c.input(2).shape, c.where);
    if (c.node.outputs.filter(Boolean).length > 1) fail(c.where, 'Attention with only the Y output', `${c.node.outputs.length} outputs`);
    return [out(q.dtype, outShape)];
  },
  exec: (ins, node) => {
    const q = tensorArg(ins, 0, node), k = tensorArg(ins, 1, node), v = tensorArg(ins, 2, node);
    const mask = optionalTensor(ins, 3);
    const { Q, K, V, outShape } = plan(node, q.shape, k.shape, v.shape, node.op);
    const scale = attrFloat(node, 'scale', 1 / Math.sqrt(Q.dim));
    const softcap = attrFloat(node, 'softcap', 0);
    const causal = attrInt(node, 'is_causal', 0) === 1;
    const group = Q.heads / K.heads;
    const at = (t: Tensor, L: Layout, four: boolean) => (b: number, h: number, s: number, d: number) =>
      four ? ((b * L.heads + h) * L.seq + s) * L.dim + d : (b * L.seq + s) * L.heads * L.dim + h * L.dim + d;
    const qi = at(q, Q, q.shape.length === 4), ki = at(k, K, k.shape.length === 4), vi = at(v, V, v.shape.length === 4);
    const y = newTensor(q.dtype, outShape);
    const yi = at(y, { ...Q, dim: V.dim }, outShape.length === 4);
    const maskMap = mask ? broadcastIndex(mask.shape, [Q.b, Q.heads, Q.seq, K.seq]) : undefined;
    const QD = q.toFloat32(), KD = k.toFloat32(), VD = v.toFloat32();
    const scores = new Float64Array(K.seq);
    const acc = new Float64Array(V.dim);
    for (let b = 0; b < Q.b; b++) for (let h = 0; h < Q.heads; h++) {
      const kh = Math.floor(h / group);
      for (let s = 0; s < Q.seq; s++) {
        let max = -Infinity;
        for (let t = 0; t < K.seq; t++) {
          let dotv = 0;
          for (let d = 0; d < Q.dim; d++) dotv += QD[qi(b, h, s, d)] * KD[ki(b, kh, t, d)];
          let sc = dotv * scale;
          if (softcap > 0) sc = softcap * Math.tanh(sc / softcap);
          if (mask) {
            const m = mask.get(maskMap![((b * Q.heads + h) * Q.seq + s) * K.seq + t]);
            if (mask.dtype === 'bool') { if (!m) sc = -Infinity; } else sc += m;
          }
          if (causal && t > s) sc = -Infinity;
          scores[t] = sc;
          max = Math.max(max, sc);
        }
        let sum = 0;
        for (let t = 0; t < K.seq; t++) { scores[t] = max === -Infinity ? 0 : Math.exp(scores[t] - max); sum += scores[t]; }
        acc.fill(0);
        for (let t = 0; t < K.seq; t++) {
          const p = sum > 0 ? scores[t] / sum : 0;
          if (p === 0) continue;
          for (let d = 0; d < V.dim; d++) acc[d] += p * VD[vi(b, kh, t, d)];
        }
        for (let d = 0; d < V.dim; d++) y.set(yi(b, h, s, d), acc[d]);
      }
    }
    return [y];
  },
  flops: (node, [q, k, v]: readonly StaticTensorType[]) => {
    const { Q, K, V } = plan(node, q.shape, k.shape, v.shape, 'Attention');
    return 2 * Q.b * Q.heads * Q.seq * K.seq * (Q.dim + V.dim);
  },
};

export const attentionOps: Record<string, OpDef> = { Attention: attention };
