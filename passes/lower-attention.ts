/**
 * lower-attention: each FusedAttention the GPU kernels support becomes its prologue and the
 * attention proper, so the packed operands are ordinary values the memory planner places (flash),
 * or two GEMMs around a row softmax where the flash kernels cannot take its head dim (GEMM).
 *
 * Flash (head dims 16/32/64/128, the same for q and v):
 *
 *   y = FusedAttention(mask, [q k v qNorm kNorm cos sin] x segments){...}
 *     =>  Qp, Kp, Vt[, Qs, Ks] = AttentionPack('', [q k v qNorm kNorm cos sin] x segments)
 *         y = PackedAttention(mask, Qp, Kp, Vt[, Qs, Ks]){scale causal outLayout to seqQ seqKv headDim qk}
 *   (Qs, Ks: the fp32 scales of 8-bit Q/K codes, qk='fp8' e4m3 or qk='int8' s8)
 *   pv='fp8' (with qk='fp8') or 'int8' (with qk='int8'):  Vt8, Vs = AttentionQuantizeV(Vt[, mask]){seqKv pv}
 *         (e4m3 or s8 codes; the key mask's dropped keys: V = 0)
 *         y = PackedAttention(mask, Qp, Kp, Vt8, Qs, Ks, Vs){... qk pv}
 *
 * The pack runs once per attention (RMSNorm, RoPE, concatenation, V transposed, FP8 rounding of
 * Q/K when qk='fp8', s8 codes when qk='int8'), instead of once per query tile inside the attention
 * kernel. Q/K/V are held in bf16 from here on (8-bit Q/K codes with qk='fp8' / 'int8'), the
 * attention kernels' compute precision.
 *
 * GEMM (any other head dim: the full-size VAE decoders' mid-block attention, 512 and 384 over
 * 128x128 = 16384 tokens, one head):
 *
 *   y = FusedAttention('', q, k, v){scale}
 *     =>  S = ActMatMul(q, k){transB=1 alpha=scale to=float32}          scores [.., Sq, Skv], fp32
 *         P = FusedKernel(S){Softmax(axis -1) -> Cast(q's type)}        one row kernel
 *         y = ActMatMul(P, v){transB=0 to=y's type shape=y's shape}
 *
 * Both GEMMs read activations (cuBLASLt, compiler/codegen/plan.ts); P is rounded to q's type (bf16)
 * as the flash kernels' P is. Memory: S and P are Sq x Skv (1 GiB fp32 and 512 MiB bf16 at 16384
 * tokens), both live while the softmax runs. Taken only for one (batch x head): q, k, v of batch 1
 * and one head each, one segment, no prologue (q/k norm, RoPE), no mask, not causal, qk 'bf16',
 * q, k and v of one float type; anything else stays FusedAttention (the kernel plan names it pending).
 *
 * Ordering: last, after fuse-elementwise (nothing fuses across these ops) and only in the
 * pipelines of a low precision (pipelineFor with a quantize pass); an fp32 compile keeps the
 * exact FusedAttention. Must not rewrite (flash): head dims other than 16/32/64/128 or differing
 * between q and v, a mask that is neither bool nor float; (GEMM) what is listed above.
 */
import { isFloat, onnxCodeOf } from '../compiler/ir/dtype.ts';
import type { Node } from '../compiler/ir/graph.ts';
import { attentionPlan, codedPV, codedQK, qkRecipe } from '../compiler/ops/fused.ts';
import type { Matcher } from './match.ts';
import { type Rule, rulePass } from './canonicalize/rule.ts';

const lowerRule: Rule = {
  name: 'FusedAttention => AttentionPack + PackedAttention',
  anchors: ['FusedAttention'],
  match(m, node) {
    if (node.domain !== 'dc') return undefined;
    const p = planOf(m, node);
    if (!flashable(p)) return undefined;
    const mask = node.inputs[0];
    if (mask && !(m.type(mask).dtype === 'bool' || isFloat(m.type(mask).dtype))) return undefined;
    if (!isFloat(m.type(node.inputs[1]).dtype)) return undefined;
    const qk = qkRecipe(node, `FusedAttention node '${node.name}'`);  // a known qk; kScale (no longer supported) refused, not dropped
    const y = node.outputs[0];
    const packed = [`${y}/packed/q`, `${y}/packed/k`, `${y}/packed/vt`, ...(codedQK(qk) ? [`${y}/packed/qscale`, `${y}/packed/kscale`] : [])];
    const pv = node.attrs.pv as string | undefined, pv8 = codedPV(pv) && qk === pv;
    const vq = [`${y}/packed/vt8`, `${y}/packed/vscale`];
    const operands = pv8 ? [packed[0], packed[1], vq[0], packed[3], packed[4], vq[1]] : packed;
    const { scale, causal, outLayout } = node.attrs;
    const prologue = Object.fromEntries(['segments', 'layouts', 'normEps', 'ropeStyle'].filter((a) => node.attrs[a] !== undefined).map((a) => [a, node.attrs[a]]));
    return {
      remove: [node],
      build: (): Node[] => [
        {
          op: 'AttentionPack', domain: 'dc', name: `${node.name}/pack`, inputs: ['', ...node.inputs.slice(1)], outputs: packed,
          attrs: { ...prologue, qk },
        },
        ...(pv8 ? [{ op: 'AttentionQuantizeV', domain: 'dc', name: `${node.name}/vquant`, inputs: mask ? [packed[2], mask] : [packed[2]], outputs: vq, attrs: { ...(mask ? { seqKv: p.k.s } : {}), ...(pv === 'int8' ? { pv } : {}) } }] : []),
        {
          op: 'PackedAttention', domain: 'dc', name: node.name, inputs: [mask, ...operands], outputs: [y],
          attrs: {
            scale: scale ?? 1 / Math.sqrt(p.q.d), causal: causal ?? 0, outLayout: outLayout ?? 'bhsd', to: onnxCodeOf(m.type(y).dtype),
            seqQ: p.q.s, seqKv: p.k.s, headDim: p.q.d, heads: p.q.h, kvHeads: p.k.h, qk, ...(pv8 ? { pv } : {}),
          },
        },
      ],
    };
  },
};

const planOf = (m: Matcher, node: Node) => attentionPlan(node, (i) => (node.inputs[i] ? m.shape(node.inputs[i]) : undefined), node.name);
/** Head dims the flash kernels (PackedAttention) take. */
const flashable = (p: ReturnType<typeof attentionPlan>) => [16, 32, 64, 128].includes(p.q.d) && p.v.d === p.q.d;

const gemmRule: Rule = {
  name: 'FusedAttention => ActMatMul + Softmax + ActMatMul',
  anchors: ['FusedAttention'],
  match(m, node) {
    if (node.domain !== 'dc') return undefined;
    const p = planOf(m, node);
    if (flashable(p) || p.segments !== 1 || node.inputs.slice(4).some(Boolean) || node.inputs[0]) return undefined;
    if (p.q.b * p.q.h !== 1 || p.k.h !== 1) return undefined;
    if ((node.attrs.causal ?? 0) !== 0 || (node.attrs.qk ?? 'bf16') !== 'bf16') return undefined;
    const [q, k, v] = node.inputs.slice(1, 4);
    const t = m.type(q).dtype;
    if (!isFloat(t) || m.type(k).dtype !== t || m.type(v).dtype !== t) return undefined;
    const y = node.outputs[0];
    const scores = `${y}/scores`, p32 = `${y}/softmax`, probs = `${y}/probs`;
    const scale = (node.attrs.scale as number | undefined) ?? 1 / Math.sqrt(p.q.d);
    return {
      remove: [node],
      build: (): Node[] => [
        { op: 'ActMatMul', domain: 'dc', name: `${node.name}/scores`, inputs: [q, k], outputs: [scores], attrs: { transB: 1, alpha: scale, to: onnxCodeOf('float32') } },
        {
          op: 'FusedKernel', domain: 'dc', name: `${node.name}/softmax`, inputs: [scores], outputs: [probs], attrs: { ops: ['Softmax', 'Cast'] },
          body: {
            inputs: [scores], outputs: [probs], nodes: [
              { op: 'Softmax', domain: '', name: `${node.name}/softmax`, inputs: [scores], outputs: [p32], attrs: { axis: -1 } },
              { op: 'Cast', domain: '', name: `${node.name}/probs`, inputs: [p32], outputs: [probs], attrs: { to: onnxCodeOf(t) } },
            ],
          },
        },
        { op: 'ActMatMul', domain: 'dc', name: node.name, inputs: [probs, v], outputs: [y], attrs: { transB: 0, to: onnxCodeOf(m.type(y).dtype), shape: p.outShape } },
      ],
    };
  },
};

export const lowerAttention = rulePass('lower-attention', [lowerRule, gemmRule]);
