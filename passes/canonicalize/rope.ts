/**
 * Rule: rotary position embedding from its decomposition => dc.RoPE(x, cos, sin){style}.
 *
 *   interleaved pairs (Flux.2, Qwen-Image):
 *     p = Reshape(x, [..., D/2, 2]);  even = Squeeze(Slice(p, 0:1, -1));  odd = Squeeze(Slice(p, 1:2, -1))
 *     rot = Reshape(Concat(Unsqueeze(Neg(odd), -1), Unsqueeze(even, -1), axis=-1), [..., D])
 *   halves (Mistral, Qwen2 text encoders):
 *     rot = Concat(Neg(Slice(x, D/2:D, -1)), Slice(x, 0:D/2, -1), axis=-1)
 *   y = [Cast](x)·cos + [Cast](rot)·sin       (any operand order)   [Cast back]   =>   RoPE
 *
 * cos/sin stay graph values (computed from the position ids at run time).
 */
import type { Node } from '../../compiler/ir/graph.ts';
import { onnxCodeOf } from '../../compiler/ir/dtype.ts';
import { type Matcher, axesOf } from '../match.ts';
import type { Rule } from './rule.ts';

interface Rotation { x: string; style: 'interleaved' | 'half'; nodes: Node[] }

/** Start/end/axis of a one-axis Slice with step 1, normalised to the input's dims. */
function sliceOf(m: Matcher, n: Node | undefined): { x: string; start: number; end: number; axis: number } | undefined {
  if (!n || n.op !== 'Slice') return undefined;
  const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => m.value(n.inputs[i])?.toNumbers());
  const rank = m.shape(n.inputs[0]).length;
  if (!starts || !ends || starts.length !== 1 || (steps && steps[0] !== 1)) return undefined;
  const axis = axes ? (axes[0] < 0 ? axes[0] + rank : axes[0]) : 0;
  const dim = m.shape(n.inputs[0])[axis];
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
  return { x: n.inputs[0], start: clamp(starts[0]), end: clamp(ends[0]), axis };
}

function matchHalf(m: Matcher, rot: string): Rotation | undefined {
  const cat = m.op(rot, 'Concat');
  if (!cat || cat.inputs.length !== 2) return undefined;
  const rank = m.shape(rot).length;
  if (((cat.attrs.axis as number) + rank) % rank !== rank - 1) return undefined;
  const neg = m.op(cat.inputs[0], 'Neg');
  const hi = sliceOf(m, m.def(neg?.inputs[0])), lo = sliceOf(m, m.def(cat.inputs[1]));
  if (!neg || !hi || !lo || hi.x !== lo.x || hi.axis !== rank - 1 || lo.axis !== rank - 1) return undefined;
  const d = m.shape(hi.x)[rank - 1];
  if (lo.start !== 0 || lo.end !== d / 2 || hi.start !== d / 2 || hi.end !== d) return undefined;
  return { x: hi.x, style: 'half', nodes: [cat, neg, m.def(neg.inputs[0])!, m.def(cat.inputs[1])!] };
}

function matchInterleaved(m: Matcher, rot: string): Rotation | undefined {
  const back = m.op(rot, 'Reshape');
  const cat = back && m.op(back.inputs[0], 'Concat');
  if (!cat || cat.inputs.length !== 2) return undefined;
  const rank5 = m.shape(cat.outputs[0]).length;
  if (((cat.attrs.axis as number) + rank5) % rank5 !== rank5 - 1 || m.shape(cat.outputs[0]).at(-1) !== 2) return undefined;
  const un1 = m.op(cat.inputs[0], 'Unsqueeze'), un2 = m.op(cat.inputs[1], 'Unsqueeze');
  const neg = un1 && m.op(un1.inputs[0], 'Neg');
  const sqOdd = neg && m.op(neg.inputs[0], 'Squeeze'), sqEven = un2 && m.op(un2.inputs[0], 'Squeeze');
  const odd = sliceOf(m, m.def(sqOdd?.inputs[0])), even = sliceOf(m, m.def(sqEven?.inputs[0]));
  if (!un1 || !un2 || !neg || !sqOdd || !sqEven || !odd || !even || odd.x !== even.x) return undefined;
  for (const u of [un1, un2, sqOdd, sqEven]) {
    const axes = axesOf(m, u);
    if (!axes || axes.length !== 1 || (axes[0] !== -1 && axes[0] !== rank5 - 1)) return undefined;
  }
  if (odd.axis !== rank5 - 1 || odd.start !== 1 || odd.end !== 2 || even.start !== 0 || even.end !== 1) return undefined;
  const pairs = m.op(odd.x, 'Reshape');
  if (!pairs) return undefined;
  const x = pairs.inputs[0];
  const xs = m.shape(x), ps = m.shape(pairs.outputs[0]);
  if (ps.length !== xs.length + 1 || ps.at(-2)! * 2 !== xs.at(-1) || !ps.slice(0, -2).every((d, i) => d === xs[i])) return undefined;
  if (m.shape(rot).join() !== xs.join()) return undefined;
  return { x, style: 'interleaved', nodes: [back, cat, un1, un2, neg, sqOdd, sqEven, m.def(sqOdd.inputs[0])!, m.def(sqEven.inputs[0])!, pairs] };
}

export const ropeRule: Rule = {
  name: 'rotary embedding => RoPE',
  anchors: ['Add'],
  match(m, add) {
    return m.commutative(add, (a, b) => {
      const mulX = m.op(a, 'Mul'), mulR = m.op(b, 'Mul');
      if (!mulX || !mulR) return undefined;
      const found = m.commutative(mulR, (rotC, sin) => {
        const rot = m.skipCasts(rotC);
        const r = matchInterleaved(m, rot) ?? matchHalf(m, rot);
        if (!r) return undefined;
        return m.commutative(mulX, (xc, cos) => (m.skipCasts(xc) === m.skipCasts(r.x) ? { r, xc, cos, sin, rotC } : undefined));
      });
      if (!found) return undefined;
      const { r, cos, sin } = found;
      const castNodes: Node[] = [];
      for (let v = found.rotC; m.op(v, 'Cast'); v = m.op(v, 'Cast')!.inputs[0]) castNodes.push(m.op(v, 'Cast')!);
      const xCasts: Node[] = [];
      for (let v = found.xc; m.op(v, 'Cast'); v = m.op(v, 'Cast')!.inputs[0]) xCasts.push(m.op(v, 'Cast')!);
      const inner = [mulX, mulR, ...castNodes, ...r.nodes];
      // The rotation pieces and casts are private to this pattern; x itself may be shared.
      for (const n of inner) if (!m.onlyUsedBy(n.outputs[0], [add, ...inner, ...xCasts])) return undefined;
      // RoPE reads x below exact widening casts only; a cast it reads is never removed.
      const x = m.skipUpcasts(r.x);
      const removable = xCasts.filter((c) => c.outputs[0] !== x && m.onlyUsedBy(c.outputs[0], [mulX, ...inner]));
      const uses = m.usesOf(add.outputs[0]);
      const castBack = uses.length === 1 && uses[0].op === 'Cast' && !m.graph.outputs.includes(add.outputs[0]) ? uses[0] : undefined;
      const root = castBack ?? add;
      const to = m.type(root.outputs[0]).dtype;
      return {
        remove: [root, ...(castBack ? [add] : []), ...inner, ...removable],
        build: () => [{
          op: 'RoPE', domain: 'dc', inputs: [x, cos, sin], outputs: [root.outputs[0]],
          attrs: { style: r.style, ...(to !== m.type(x).dtype ? { to: onnxCodeOf(to) } : {}) }, name: add.name,
        }],
      };
    });
  },
};
