/**
 * Rules for activations, each in every operand order:
 *
 *   Mul(x, Sigmoid(x))                                              => dc.Silu(x)
 *   Mul(silu(a), b), a and b the two halves of t's last axis        => dc.SwiGLU(t)
 *     (halves by Slice [0:n] / [n:2n] or by a two-way Split)
 *   x · 0.5 · (1 + Tanh(√(2/π) · (x + 0.044715 · x³)))              => Gelu(x){approximate='tanh'}
 *     (the product may be grouped any way; x³ as Pow(x, 3))
 */
import type { Node } from '../../compiler/ir/graph.ts';
import type { Matcher } from '../match.ts';
import type { Rule } from './rule.ts';

/** a when v = Silu(a) or Mul(a, Sigmoid(a)) (returning the nodes that compute it). */
function siluOf(m: Matcher, v: string): { a: string; nodes: Node[] } | undefined {
  const s = m.dcOp(v, 'Silu');
  if (s) return { a: s.inputs[0], nodes: [s] };
  const mul = m.op(v, 'Mul');
  return mul && m.commutative(mul, (a, sg) => {
    const sig = m.op(sg, 'Sigmoid');
    return sig && sig.inputs[0] === a ? { a, nodes: [mul, sig] } : undefined;
  });
}

export const siluRule: Rule = {
  name: 'x·sigmoid(x) => Silu',
  anchors: ['Mul'],
  match(m, node) {
    const found = siluOf(m, node.outputs[0]);
    if (!found || found.nodes[0] !== node) return undefined;
    const sig = found.nodes[1];
    const remove = m.onlyUsedBy(sig.outputs[0], [node]) ? [node, sig] : [node];
    return { remove, build: () => [{ op: 'Silu', domain: 'dc', inputs: [found.a], outputs: [node.outputs[0]], attrs: {}, name: node.name }] };
  },
};

/** [t, which half] when x is the first (0) or second (1) half of t's last axis. */
function halfOf(m: Matcher, x: string): { t: string; half: 0 | 1; node: Node } | undefined {
  const slice = m.op(x, 'Slice');
  if (slice) {
    const t = slice.inputs[0];
    const shape = m.shape(t), rank = shape.length, d = shape[rank - 1];
    const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => m.value(slice.inputs[i])?.toNumbers());
    const axis = axes ? (axes[0] + rank) % rank : 0;
    if (!starts || !ends || starts.length !== 1 || axis !== rank - 1 || (steps && steps[0] !== 1)) return undefined;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const [s, e] = [clamp(starts[0]), clamp(ends[0])];
    if (s === 0 && e === d / 2) return { t, half: 0, node: slice };
    if (s === d / 2 && e === d) return { t, half: 1, node: slice };
    return undefined;
  }
  const split = m.op(x, 'Split');
  if (!split || split.outputs.length !== 2) return undefined;
  const shape = m.shape(split.inputs[0]);
  const axis = (((split.attrs.axis as number | undefined) ?? 0) + shape.length) % shape.length;
  if (axis !== shape.length - 1 || m.shape(split.outputs[0]).at(-1) !== m.shape(split.outputs[1]).at(-1)) return undefined;
  return { t: split.inputs[0], half: split.outputs[0] === x ? 0 : 1, node: split };
}

export const swigluRule: Rule = {
  name: 'silu(first half)·second half => SwiGLU',
  anchors: ['Mul'],
  match(m, node) {
    return m.commutative(node, (g, u) => {
      const silu = siluOf(m, g);
      const gate = silu && halfOf(m, silu.a), up = halfOf(m, u);
      if (!silu || !gate || !up || gate.t !== up.t || gate.half !== 0 || up.half !== 1) return undefined;
      const parts = [...silu.nodes, gate.node, ...(up.node === gate.node ? [] : [up.node])];
      if (parts.some((p) => !m.onlyUsedBy(p.outputs[0], [node, ...parts]))) return undefined;
      if (gate.node.op === 'Split' && gate.node.outputs.some((o) => !m.onlyUsedBy(o, [node, ...parts]))) return undefined;
      return { remove: [node, ...parts], build: () => [{ op: 'SwiGLU', domain: 'dc', inputs: [gate.t], outputs: [node.outputs[0]], attrs: {}, name: node.name }] };
    });
  },
};

/** Flattens a private tree of Muls into its factors. */
function factors(m: Matcher, v: string, root: Node, nodes: Node[]): string[] {
  const mul = m.op(v, 'Mul');
  if (mul && (mul === root || m.onlyUsedBy(v, [root, ...nodes]))) {
    nodes.push(mul);
    return [...factors(m, mul.inputs[0], root, nodes), ...factors(m, mul.inputs[1], root, nodes)];
  }
  return [v];
}

/** Constants compare within bfloat16 rounding (2⁻⁸ relative): a bf16 export stores √(2/π) as 0.796875. */
const near = (a: number | undefined, b: number, tol = 2 ** -8) => a !== undefined && Math.abs(a - b) <= tol * Math.abs(b);

export const geluTanhRule: Rule = {
  name: 'tanh-approximated GELU => Gelu',
  anchors: ['Mul'],
  match(m, node) {
    const nodes: Node[] = [];
    const fs = factors(m, node.outputs[0], node, nodes);
    if (fs.length !== 3) return undefined;
    const half = fs.find((f) => near(m.scalar(f), 0.5));
    const onePlusTanh = (f: string) => {
      const add = m.op(f, 'Add');
      const t = add && m.commutative(add, (a, one) => (m.scalar(one) === 1 ? m.op(a, 'Tanh') : undefined));
      return add && t ? { add, t } : undefined;
    };
    const found = fs.map(onePlusTanh).find(Boolean);
    if (!half || !found) return undefined;
    const { add: onePlus, t: tanhPart } = found;
    const x = fs.find((f) => f !== half && f !== onePlus.outputs[0]);
    if (!x) return undefined;
    const inner: Node[] = [];
    const innerFs = factors(m, tanhPart.inputs[0], m.op(tanhPart.inputs[0], 'Mul') ?? tanhPart, inner);
    const c = innerFs.find((f) => near(m.scalar(f), Math.sqrt(2 / Math.PI)));
    const sum = innerFs.map((f) => m.op(f, 'Add')).find(Boolean);
    const cubic = sum && m.commutative(sum, (a, b) => {
      if (a !== x) return undefined;
      const cf: Node[] = [];
      const parts = factors(m, b, m.op(b, 'Mul') ?? sum, cf);
      const k = parts.find((p) => near(m.scalar(p), 0.044715));
      const pow = parts.map((p) => m.op(p, 'Pow')).find(Boolean);
      return k && pow && pow.inputs[0] === x && m.scalar(pow.inputs[1]) === 3 && parts.length === 2 ? [...cf, pow] : undefined;
    });
    if (!c || !sum || !cubic || innerFs.length !== 2) return undefined;
    const all = [node, ...nodes.filter((n) => n !== node), onePlus, tanhPart, ...inner, sum, ...cubic];
    if (all.some((n) => n !== node && !m.onlyUsedBy(n.outputs[0], all))) return undefined;
    return { remove: [...new Set(all)], build: () => [{ op: 'Gelu', domain: '', inputs: [x], outputs: [node.outputs[0]], attrs: { approximate: 'tanh' }, name: node.name }] };
  },
};
