/**
 * Rule: AdaLN modulation => dc.Modulate(x, scale, shift).
 *
 *   Add(Mul(x, Add(scale, 1)), shift)      (any operand order)      =>   Modulate(x, scale, shift)
 *
 * The (1 + scale) value may be shared (Flux.2's single-stream blocks share one modulation); it is
 * left for its other users and removed by remove-dead once unused.
 */
import type { Rule } from './rule.ts';

export const modulateRule: Rule = {
  name: '(1+scale)·x+shift => Modulate',
  anchors: ['Add'],
  match(m, node) {
    return m.commutative(node, (prod, shift) => {
      const mul = m.op(prod, 'Mul');
      if (!mul || !m.onlyUsedBy(prod, [node])) return undefined;
      return m.commutative(mul, (x, onePlus) => {
        const add = m.op(onePlus, 'Add');
        const scale = add && m.commutative(add, (s, one) => (m.scalar(one) === 1 && !m.isConstant(s) ? s : undefined));
        if (!add || !scale) return undefined;
        const out = m.shape(node.outputs[0]).join();
        if (m.shape(x).join() !== out) return undefined; // x carries the full shape; scale/shift broadcast
        const remove = m.onlyUsedBy(onePlus, [mul]) ? [node, mul, add] : [node, mul];
        return { remove, build: () => [{ op: 'Modulate', domain: 'dc', inputs: [x, scale, shift], outputs: [node.outputs[0]], attrs: {}, name: node.name }] };
      });
    });
  },
};
