/**
 * Rule: RMSNorm from its decomposition => RMSNormalization (the opset-23 op, used as the canonical
 * form whatever the graph's opset).
 *
 *   xc = [Cast f32](x)
 *   r  = Reciprocal(Sqrt(ReduceMean(Pow(xc, 2), axes=[-1]) + eps))    or  Div(xc, Sqrt(...))
 *   y  = [Cast](Mul(xc, r)) * [Cast](w)          (either operand order; w optional)
 *   [Cast back to dtype(x)]                                     =>   RMSNormalization(x, w){eps}
 *
 * Statistics are computed in float32 (stash_type=1) as the decomposition did; a trailing Cast back
 * to x's dtype is absorbed when y has no other use.
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import type { Node } from '../../compiler/ir/graph.ts';
import { type Matcher, axesOf, lastAxis } from '../match.ts';
import type { Rule } from './rule.ts';

interface Core { x: string; xc: string; eps: number; nodes: Node[] }

/** Matches Mul(xc, r) or Div(xc, sqrt) computing xc / sqrt(mean(xc²) + eps) over the last axis. */
function matchNormalised(m: Matcher, value: string): Core | undefined {
  const top = m.op(value, 'Mul', 'Div');
  if (!top) return undefined;
  const viaDenominator = (xc: string, denom: string, nodes: Node[]): Core | undefined => {
    const sqrt = m.op(denom, 'Sqrt');
    const add = sqrt && m.op(sqrt.inputs[0], 'Add');
    if (!add) return undefined;
    return m.commutative(add, (meanV, epsV) => {
      const eps = m.scalar(epsV);
      const mean = m.op(meanV, 'ReduceMean');
      const pow = mean && m.op(mean.inputs[0], 'Pow');
      if (eps === undefined || !mean || !pow || pow.inputs[0] !== xc || m.scalar(pow.inputs[1]) !== 2) return undefined;
      if ((mean.attrs.keepdims ?? 1) !== 1 || !lastAxis(axesOf(m, mean), m.shape(xc).length)) return undefined;
      return { x: m.skipCasts(xc), xc, eps, nodes: [...nodes, sqrt, add, mean, pow] };
    });
  };
  if (top.op === 'Div') return viaDenominator(top.inputs[0], top.inputs[1], [top]);
  return m.commutative(top, (xc, r) => {
    const recip = m.op(r, 'Reciprocal');
    return recip ? viaDenominator(xc, recip.inputs[0], [top, recip]) : undefined;
  });
}

export const rmsNormRule: Rule = {
  name: 'RMSNorm decomposition => RMSNormalization',
  anchors: ['Mul', 'Div'],
  match(m, node) {
    // Weighted form: Mul(normalised, w), each side possibly behind a Cast.
    let core: Core | undefined;
    let weight: string | undefined;
    if (node.op === 'Mul') {
      const weighted = m.commutative(node, (a, b) => {
        const inner = matchNormalised(m, m.skipCasts(a));
        const wShape = m.shape(b);
        const d = inner && m.shape(inner.xc).at(-1);
        return inner && wShape.length >= 1 && wShape.at(-1) === d && wShape.slice(0, -1).every((s) => s === 1) ? { inner, w: b } : undefined;
      });
      if (weighted) {
        core = weighted.inner;
        weight = weighted.w;
      }
    }
    const anchor = node;
    if (!core) {
      core = matchNormalised(m, node.outputs[0]);
      if (!core) return undefined;
    }
    const interior = [...core.nodes];
    // Every intermediate is used only inside the pattern.
    const between: Node[] = [];
    if (weight) {
      for (let v = node.inputs.find((i) => i !== weight)!; m.op(v, 'Cast'); v = m.op(v, 'Cast')!.inputs[0]) between.push(m.op(v, 'Cast')!);
    }
    const all = anchor === core.nodes[0] ? interior : [anchor, ...between, ...interior];
    for (const n of all) if (n !== anchor && !m.onlyUsedBy(n.outputs[0], all)) return undefined;
    // Absorb a trailing Cast back to the input dtype.
    const out = anchor.outputs[0];
    const uses = m.usesOf(out);
    const xType = m.type(core.x);
    const castBack = uses.length === 1 && uses[0].op === 'Cast' && m.type(uses[0].outputs[0]).dtype === xType.dtype && !m.graph.outputs.includes(out) ? uses[0] : undefined;
    const x = castBack || m.type(out).dtype === xType.dtype ? core.x : core.xc;
    const d = m.shape(x).at(-1)!;
    const w = weight ? m.skipCasts(weight) : undefined;
    const replaced = castBack ?? anchor;
    return {
      remove: castBack ? [castBack, ...all] : all,
      build(b) {
        const wName = w ?? b.constant(`${replaced.outputs[0]}/ones`, Tensor.fromNumbers(m.type(x).dtype, [d], new Array(d).fill(1)));
        return [{ op: 'RMSNormalization', domain: '', inputs: [x, wName], outputs: [replaced.outputs[0]], attrs: { axis: -1, epsilon: core!.eps, stash_type: 1 }, name: anchor.name }];
      },
    };
  },
};
