/**
 * quantize, step 1 of 2: each GEMM the precision policy selects gets explicit quantize/dequantize
 * on both operands (weights per output channel / 16-blocks, activations per token), so the graph
 * computes exactly what the low-precision GEMM will:
 *
 *   y = Linear(x, W, b)
 *     =>  xq, xs = Quantize(x){axis=-1};   wq, ws = Quantize(W){axis=K}   (a load-time node on W)
 *         y = Linear(Dequantize(xq, xs), Dequantize(wq, ws), b)
 *
 * A weight-only decision (a one-row GEMM with a large weight, policy.ts `oneRowGemms`) quantizes the
 * weight alone, to FP8 per output channel, and leaves x as it is:
 *
 *   y = Linear(x, W, b)  =>  wq, ws = Quantize(W){fp8, axis=K};  y = Linear(x, Dequantize(wq, ws), b)
 *
 * A FusedAttention the policy picks (policy.ts fp8Attention: by default the long bidirectional ones)
 * computes Q·Kᵀ on 8 bits: on s8 codes where int8Attention says so (qk='int8'; the default), with P·V on 8-bit
 * integers where int8PvAttention does (pv='int8'; the default where no mask or a key mask is); otherwise in e4m3
 * (qk='fp8'), with P·V in e4m3 too where fp8PvAttention says so (pv='fp8'; the policy's "fp8-pv").
 *
 * Step 2 (fold.ts) turns the Dequantize pair into one QLinear (a lone weight Dequantize: WQLinear); fuse-elementwise then moves the
 * activation Quantize into the kernel that produces x.
 */
import { onnxCodeOf } from '../../compiler/ir/dtype.ts';
import type { Node } from '../../compiler/ir/graph.ts';
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';
import { type GemmDecision, type PrecisionPolicy, decideGemms, fp8Attention, fp8PvAttention, int8Attention, int8PvAttention } from './policy.ts';
import type { Graph } from '../../compiler/ir/graph.ts';
import { attentionPlan } from '../../compiler/ops/fused.ts';

/** A FusedAttention's query and key lengths, from its inputs' types. */
function attentionLengths(graph: Graph, node: Node): { queries: number; keys: number; maskShape?: number[] } {
  const shape = (i: number) => { const t = node.inputs[i] ? graph.types.get(node.inputs[i]) : undefined; return t?.kind === 'tensor' ? (t.shape as number[]) : undefined; };
  const p = attentionPlan(node, shape, `FusedAttention '${node.outputs[0]}'`);
  return { queries: p.q.s, keys: p.k.s, maskShape: shape(0) };
}

/** The pass, plus the policy's decisions from its first run (for the compile report). */
export interface QuantizePass extends Pass {
  readonly decisions: GemmDecision[];
  readonly policy: PrecisionPolicy;
  /** How the FP8 GEMMs' sums are simulated (dc.QLinear `accumulate`): "sm90" where the target is an
   * h100 and the policy's accumulation "fast" (its tensor cores' own sums, bit for bit), else "exact". */
  readonly accumulate: 'exact' | 'sm90';
}

export function insertQuantize(policy: PrecisionPolicy, target?: 'h100' | 'b200'): QuantizePass {
  const first: GemmDecision[] = [];
  return {
    name: 'quantize',
    accumulate: target === 'h100' && policy.format === 'fp8' && policy.accumulation === 'fast' ? 'sm90' : 'exact',
    rules: [`Linear => ${policy.format} Q/DQ`, 'Linear => fp8 weight-only Q/DQ', 'FusedAttention => fp8 Q·Kᵀ', 'FusedAttention => int8 Q·Kᵀ'],
    decisions: first,
    policy,
    run(graph, ctx) {
      // Patterns are checked on the first run; later rounds see the already-quantized GEMMs gone.
      const decisions = decideGemms(graph, policy, first.length === 0);
      if (first.length === 0) first.push(...decisions.values());
      const rw = new Rewriter(graph);
      const quantized = new Map<string, string>(); // activation -> its (shared) dequantized value
      const convolves = graph.nodes.some((n) => n.op === 'Conv' || n.op === 'FusedConv');
      graph.nodes.forEach((node, i) => {
        const attention = node.op === 'FusedAttention' && (node.attrs.qk ?? 'bf16') === 'bf16'
          ? { causal: node.attrs.causal === 1, ...attentionLengths(graph, node), convolves, masked: !!node.inputs[0] } : undefined;
        if (attention && int8Attention(policy, attention)) {
          rw.insertBefore(i, [{ ...node, attrs: { ...node.attrs, qk: 'int8', ...(int8PvAttention(policy, attention) ? { pv: 'int8' } : {}) } }], new Map());
          rw.removeNode(i);
          ctx.count('FusedAttention => int8 Q·Kᵀ');
          return;
        }
        if (attention && fp8Attention(policy, attention)) {
          const pv = fp8PvAttention(policy, attention);
          rw.insertBefore(i, [{ ...node, attrs: { ...node.attrs, qk: 'fp8', ...(pv ? { pv: 'fp8' } : {}) } }], new Map());
          rw.removeNode(i);
          ctx.count('FusedAttention => fp8 Q·Kᵀ');
          return;
        }
        if (node.domain !== 'dc' || node.op !== 'Linear' || !decisions.get(node.outputs[0])?.quantized) return;
        // bf16 on operands already in bf16 changes nothing: leave those GEMMs as they are.
        if (policy.format === 'bf16' && graph.types.get(node.inputs[0])?.dtype === 'bfloat16' && graph.types.get(node.inputs[1])?.dtype === 'bfloat16') return;
        const [x, w, b] = node.inputs;
        const base = node.outputs[0];
        const xType = graph.types.get(x)!, wType = graph.types.get(w)!;
        const wAxis = node.attrs.transB === 1 ? 1 : 0;
        if (decisions.get(base)!.weightOnly) {
          rw.insertBefore(i, [
            { op: 'Quantize', domain: 'dc', inputs: [w], outputs: [`${base}/wq`, `${base}/ws`], attrs: { format: 'fp8', axis: wAxis }, name: '' },
            { op: 'Dequantize', domain: 'dc', inputs: [`${base}/wq`, `${base}/ws`], outputs: [`${base}/w`], attrs: { axis: wAxis, to: onnxCodeOf(wType.dtype) }, name: '' },
            { ...node, inputs: b ? [x, `${base}/w`, b] : [x, `${base}/w`] },
          ], new Map());
          rw.removeNode(i);
          ctx.count('Linear => fp8 weight-only Q/DQ');
          return;
        }
        const format = policy.format;
        // GEMMs reading one activation share its quantization.
        const xd = quantized.get(x) ?? `${base}/x`;
        const built: Node[] = quantized.has(x) ? [] : [
          { op: 'Quantize', domain: 'dc', inputs: [x], outputs: [`${base}/xq`, `${base}/xs`], attrs: { format, axis: -1 }, name: '' },
          { op: 'Dequantize', domain: 'dc', inputs: [`${base}/xq`, `${base}/xs`], outputs: [xd], attrs: { axis: -1, to: onnxCodeOf(xType.dtype) }, name: '' },
        ];
        quantized.set(x, xd);
        built.push(
          { op: 'Quantize', domain: 'dc', inputs: [w], outputs: [`${base}/wq`, `${base}/ws`], attrs: { format, axis: wAxis }, name: '' },
          { op: 'Dequantize', domain: 'dc', inputs: [`${base}/wq`, `${base}/ws`], outputs: [`${base}/w`], attrs: { axis: wAxis, to: onnxCodeOf(wType.dtype) }, name: '' },
          { ...node, inputs: b ? [xd, `${base}/w`, b] : [xd, `${base}/w`] },
        );
        rw.insertBefore(i, built, new Map());
        rw.removeNode(i);
        ctx.count(`Linear => ${policy.format} Q/DQ`);
      });
      return rw.apply();
    },
  };
}
