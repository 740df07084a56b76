/**
 * Rule: a projection by a weight => dc.Linear(x, W[, b]){transB}.
 *
 *   MatMul(x, W) [+ b]              W a 2-D constant ([K, N])                 => Linear(x, W, b)
 *   MatMul(x, Transpose(W, [1,0]))  PyTorch's [N, K] weight, as exported      => Linear(x, W, b){transB=1}
 *   Gemm(x, W[, C]){transB}         alpha = beta = 1, transA = 0              => Linear(x, W, C){transB}
 *
 * The bias is absorbed when it is a constant of N values and the product has no other use. A
 * weight that is not a constant (e.g. attention's Q·Kᵀ) is left to the other passes.
 */
import type { Node } from '../../compiler/ir/graph.ts';
import type { Matcher } from '../match.ts';
import type { Rule } from './rule.ts';

/** The stored weight behind `w` and whether it is transposed ([N, K]). */
function weightOf(m: Matcher, w: string): { weight: string; transB: boolean; transpose?: Node } | undefined {
  if (m.graph.constants.has(w) && m.shape(w).length === 2) return { weight: w, transB: false };
  const t = m.op(w, 'Transpose');
  if (t && m.graph.constants.has(t.inputs[0]) && m.shape(t.inputs[0]).length === 2 && (t.attrs.perm as number[] | undefined ?? [1, 0]).join() === '1,0') {
    return { weight: t.inputs[0], transB: true, transpose: t };
  }
  return undefined;
}

function biasOf(m: Matcher, product: Node, n: number): { bias: string; add: Node } | undefined {
  const uses = m.usesOf(product.outputs[0]);
  if (uses.length !== 1 || uses[0].op !== 'Add' || m.graph.outputs.includes(product.outputs[0])) return undefined;
  const add = uses[0];
  const b = add.inputs[0] === product.outputs[0] ? add.inputs[1] : add.inputs[0];
  const shape = m.shape(b);
  if (!m.graph.constants.has(b) || shape.at(-1) !== n || shape.slice(0, -1).some((d) => d !== 1)) return undefined;
  return { bias: b, add };
}

export const linearRule: Rule = {
  name: 'MatMul/Gemm by a weight => Linear',
  anchors: ['MatMul', 'Gemm'],
  match(m, node) {
    const w = weightOf(m, node.inputs[1]);
    if (!w) return undefined;
    let transB = w.transB;
    let bias: string | undefined;
    const remove: Node[] = [node];
    if (node.op === 'Gemm') {
      if ((node.attrs.transA ?? 0) !== 0 || (node.attrs.alpha ?? 1) !== 1 || (node.attrs.beta ?? 1) !== 1 || w.transpose) return undefined;
      transB = node.attrs.transB === 1;
      bias = node.inputs[2] || undefined;
      if (bias && (!m.graph.constants.has(bias) || m.shape(bias).reduce((a, b) => a * b, 1) !== m.shape(node.outputs[0]).at(-1))) return undefined;
    }
    if (m.shape(node.inputs[0]).length < 1) return undefined;
    const n = m.shape(node.outputs[0]).at(-1)!;
    const withBias = !bias && node.op === 'MatMul' ? biasOf(m, node, n) : undefined;
    if (withBias) {
      bias = withBias.bias;
      remove.unshift(withBias.add);
    }
    if (w.transpose && m.onlyUsedBy(w.transpose.outputs[0], [node])) remove.push(w.transpose);
    const root = remove[0];
    return {
      remove,
      build: () => [{
        op: 'Linear', domain: 'dc', inputs: bias ? [node.inputs[0], w.weight, bias] : [node.inputs[0], w.weight],
        outputs: [root.outputs[0]], attrs: { transB: transB ? 1 : 0 }, name: node.name,
      }],
    };
  },
};
