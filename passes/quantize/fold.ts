/**
 * quantize, step 2 of 2: a Linear whose operands are both dequantized becomes one QLinear reading
 * the quantized operands and their scales (what the FP8/FP4 GEMM consumes):
 *
 *   Linear(Dequantize(xq, xs), Dequantize(wq, ws), b)   =>   QLinear(xq, xs, wq, ws, b){transB, format}
 *
 *   Linear(x, Dequantize(wq, ws){axis K}, b)   =>   WQLinear(x, wq, ws, b){transB, format: fp8}
 *     (x not dequantized: a weight-only decision, insert.ts; wq from an fp8 Quantize)
 *
 * `accumulate` (makeFoldQuantize): how the target's FP8 tensor cores sum, recorded on each fp8
 * QLinear for the reference executor: "sm90" on an h100 with fast accumulation (compiler/quant/
 * tensor-core.ts: what its own kernel and cuBLASLt fast compute, bit for bit), otherwise nothing
 * (QLinear's default, "exact").
 *
 * The Dequantize nodes go when nothing else reads them. The activation Quantize is left for
 * fuse-elementwise to merge into the kernel producing x (never a separate pass over memory when
 * that producer is an element-wise kernel).
 */
import { onnxCodeOf } from '../../compiler/ir/dtype.ts';
import type { Node } from '../../compiler/ir/graph.ts';
import { type Rule, rulePass } from '../canonicalize/rule.ts';

const foldRule = (accumulate: 'exact' | 'sm90'): Rule => ({
  name: 'Linear(DQ, DQ) => QLinear',
  anchors: ['Linear'],
  match(m, node) {
    if (node.domain !== 'dc') return undefined;
    const dx = m.dcOp(node.inputs[0], 'Dequantize'), dw = m.dcOp(node.inputs[1], 'Dequantize');
    if (!dx || !dw) return undefined;
    const qx = m.dcOp(dx.inputs[0], 'Quantize');
    const format = qx?.attrs.format;
    const remove: Node[] = [node, ...[dx, dw].filter((d) => m.onlyUsedBy(d.outputs[0], [node]))];
    return {
      remove,
      build: () => [{
        op: 'QLinear', domain: 'dc', inputs: [dx.inputs[0], dx.inputs[1], dw.inputs[0], dw.inputs[1], ...(node.inputs[2] ? [node.inputs[2]] : [])],
        outputs: [node.outputs[0]], name: node.name,
        attrs: { transB: node.attrs.transB ?? 0, format: format ?? 'fp8', to: onnxCodeOf(m.type(node.outputs[0]).dtype), ...(accumulate === 'sm90' && (format ?? 'fp8') === 'fp8' ? { accumulate } : {}) },
      }],
    };
  },
});

const weightOnlyRule: Rule = {
  name: 'Linear(x, DQ) => WQLinear',
  anchors: ['Linear'],
  match(m, node) {
    if (node.domain !== 'dc' || m.dcOp(node.inputs[0], 'Dequantize')) return undefined;
    const dw = m.dcOp(node.inputs[1], 'Dequantize');
    const qw = dw && m.dcOp(dw.inputs[0], 'Quantize');
    const kAxis = node.attrs.transB === 1 ? 1 : 0;
    if (!dw || !qw || qw.attrs.format !== 'fp8' || qw.attrs.axis !== kAxis) return undefined;
    return {
      remove: [node, ...(m.onlyUsedBy(dw.outputs[0], [node]) ? [dw] : [])],
      build: () => [{
        op: 'WQLinear', domain: 'dc', inputs: [node.inputs[0], dw.inputs[0], dw.inputs[1], ...(node.inputs[2] ? [node.inputs[2]] : [])],
        outputs: [node.outputs[0]], name: node.name,
        attrs: { transB: node.attrs.transB ?? 0, format: 'fp8', to: onnxCodeOf(m.type(node.outputs[0]).dtype) },
      }],
    };
  },
};

export const makeFoldQuantize = (accumulate: 'exact' | 'sm90' = 'exact') => rulePass('fold-quantize', [foldRule(accumulate), weightOnlyRule]);
export const foldQuantize = makeFoldQuantize();
