/**
 * lower-attention: each FusedAttention the GPU kernels support becomes its prologue and the
 * attention proper, so the packed operands are ordinary values the memory planner places:
 *
 *   y = FusedAttention(mask, [q k v qNorm kNorm cos sin] x segments){...}
 *     =>  Qp, Kp, Vt[, Qs, Ks] = AttentionPack('', [q k v qNorm kNorm cos sin] x segments)
 *         y = PackedAttention(mask, Qp, Kp, Vt[, Qs, Ks]){scale causal outLayout to seqQ seqKv headDim qk}
 *
 * The pack runs once per attention (RMSNorm, RoPE, concatenation, V transposed, FP8 rounding of
 * Q/K when qk='fp8'), instead of once per query tile inside the attention kernel. Q/K/V are held
 * in bf16 from here on (e4m3 Q/K with qk='fp8'), the attention kernels' compute precision.
 *
 * Ordering: last, after fuse-elementwise (nothing fuses across these ops) and only in the
 * pipelines of a low precision (pipelineFor with a quantize pass); an fp32 compile keeps the
 * exact FusedAttention. Must not rewrite: head dims other than 16/32/64/128 or differing between
 * q and v, a mask that is neither bool nor float (those stay FusedAttention, named in the kernel
 * plan's pending ops).
 */
import { isFloat, onnxCodeOf } from '../compiler/ir/dtype.ts';
import type { Node } from '../compiler/ir/graph.ts';
import { attentionPlan } from '../compiler/ops/fused.ts';
import { type Rule, rulePass } from './canonicalize/rule.ts';

const lowerRule: Rule = {
  name: 'FusedAttention => AttentionPack + PackedAttention',
  anchors: ['FusedAttention'],
  match(m, node) {
    if (node.domain !== 'dc') return undefined;
    const p = attentionPlan(node, (i) => (node.inputs[i] ? m.shape(node.inputs[i]) : undefined), node.name);
    if (![16, 32, 64, 128].includes(p.q.d) || p.v.d !== p.q.d) return undefined;
    const mask = node.inputs[0];
    if (mask && !(m.type(mask).dtype === 'bool' || isFloat(m.type(mask).dtype))) return undefined;
    if (!isFloat(m.type(node.inputs[1]).dtype)) return undefined;
    const qk = (node.attrs.qk as string | undefined) ?? 'bf16';
    const y = node.outputs[0];
    const packed = [`${y}/packed/q`, `${y}/packed/k`, `${y}/packed/vt`, ...(qk === 'fp8' ? [`${y}/packed/qscale`, `${y}/packed/kscale`] : [])];
    const { scale, causal, outLayout } = node.attrs;
    const prologue = Object.fromEntries(['segments', 'layouts', 'normEps', 'ropeStyle'].filter((a) => node.attrs[a] !== undefined).map((a) => [a, node.attrs[a]]));
    return {
      remove: [node],
      build: (): Node[] => [
        {
          op: 'AttentionPack', domain: 'dc', name: `${node.name}/pack`, inputs: ['', ...node.inputs.slice(1)], outputs: packed,
          attrs: { ...prologue, qk },
        },
        {
          op: 'PackedAttention', domain: 'dc', name: node.name, inputs: [mask, ...packed], outputs: [y],
          attrs: {
            scale: scale ?? 1 / Math.sqrt(p.q.d), causal: causal ?? 0, outLayout: outLayout ?? 'bhsd', to: onnxCodeOf(m.type(y).dtype),
            seqQ: p.q.s, seqKv: p.k.s, headDim: p.q.d, heads: p.q.h, kvHeads: p.k.h, qk,
          },
        },
      ],
    };
  },
};

export const lowerAttention = rulePass('lower-attention', [lowerRule]);
