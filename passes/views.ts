/**
 * View algebra: describes a value reached from a source tensor through data-movement-only ops
 * (Reshape, Transpose, Unsqueeze, Squeeze, Expand, float Casts) and scalar scaling (Mul/Div by a
 * constant) as a strided view of that source, so a fusion can read the source directly:
 *
 *   element [i0, i1, ...] of the value = scale · source_flat[Σ floor(i_k / repeat_k) · stride_k]
 *
 * `repeat` captures grouped-query heads: Expand of a kv-head axis followed by a Reshape that merges
 * it (kv heads h, group g) reads source head floor(i / g). A Reshape that is not expressible as a
 * view ends the walk there. Dims that a Reshape merges although a transpose made them
 * non-contiguous (batch and heads at batch > 1: [B, H, S, D] -> [B·H, S, D] -> ... -> [B, H, ..])
 * are carried as one compound dim (its `parts`, outer..inner, no stride of its own) that a later
 * Reshape may split back along the same boundaries; a view that still holds one is not returned.
 */
import { isFloat } from '../compiler/ir/dtype.ts';
import type { Node } from '../compiler/ir/graph.ts';
import { strides } from '../compiler/ops/op.ts';
import { type Matcher, axesOf } from './match.ts';

/** `parts`: a compound dim (see the header); its stride is NaN. */
export interface ViewDim { size: number; stride: number; repeat: number; parts?: readonly ViewDim[] }
export interface View { source: string; dims: ViewDim[]; scale: number; nodes: Node[] }

const contiguous = (shape: readonly number[]): ViewDim[] => {
  const s = strides(shape);
  return shape.map((size, i) => ({ size, stride: s[i], repeat: 1 }));
};

/** Applies one op to a view; undefined if the result is not a strided view. */
function step(m: Matcher, node: Node, dims: ViewDim[]): ViewDim[] | undefined {
  const rank = dims.length;
  switch (node.op) {
    case 'Cast': return dims;
    case 'Transpose': {
      const perm = (node.attrs.perm as number[] | undefined) ?? dims.map((_, i) => rank - 1 - i);
      return perm.map((p) => dims[p]);
    }
    case 'Unsqueeze': {
      const axes = axesOf(m, node);
      if (!axes) return undefined;
      const outRank = rank + axes.length;
      const norm = axes.map((a) => (a < 0 ? a + outRank : a));
      const out: ViewDim[] = [];
      let j = 0;
      for (let i = 0; i < outRank; i++) out.push(norm.includes(i) ? { size: 1, stride: 0, repeat: 1 } : dims[j++]);
      return out;
    }
    case 'Squeeze': {
      const axes = axesOf(m, node)?.map((a) => (a < 0 ? a + rank : a));
      return dims.filter((d, i) => (axes ? !axes.includes(i) : d.size !== 1));
    }
    case 'Expand': {
      const target = m.shape(node.outputs[0]);
      const padded = [...new Array(target.length - rank).fill({ size: 1, stride: 0, repeat: 1 }), ...dims];
      return padded.map((d, i) => (d.size === target[i] ? d : { size: target[i], stride: 0, repeat: 1 }));
    }
    case 'Reshape': return reshapeView(dims, m.shape(node.outputs[0]));
    default: return undefined;
  }
}

/** Reshape as a view: groups old and new dims by equal products; each group must be mergeable. */
function reshapeView(dims: ViewDim[], target: readonly number[]): ViewDim[] | undefined {
  const old = dims.filter((d) => d.size !== 1);
  const out: ViewDim[] = [];
  let i = 0;
  const next = target.map((size) => size);
  let j = 0;
  while (j < next.length) {
    if (next[j] === 1) { out.push({ size: 1, stride: 0, repeat: 1 }); j++; continue; }
    // Collect old dims and new dims until their products agree.
    const group: ViewDim[] = [];
    const newGroup: number[] = [];
    let po = 1, pn = 1;
    do {
      if (po <= pn && i < old.length) { group.push(old[i]); po *= old[i++].size; }
      else if (j < next.length) { newGroup.push(next[j]); pn *= next[j++]; }
      else return undefined;
    } while (po !== pn || group.length === 0 || newGroup.length === 0);
    while (j < next.length && next[j] === 1 && i >= old.length) { newGroup.push(1); j++; }
    const merged = mergeDims(group);
    if (!merged) return undefined;
    const sizes = newGroup.filter((s) => s !== 1);
    if (sizes.length === 1) out.push(merged, ...newGroup.slice(1).map(() => ({ size: 1, stride: 0, repeat: 1 })));
    else if (merged.parts) {
      const split = splitCompound(merged, newGroup);
      if (!split) return undefined;
      out.push(...split);
    } else {
      if (merged.repeat !== 1) return undefined;
      let inner = 1;
      const split: ViewDim[] = [];
      for (let k = newGroup.length - 1; k >= 0; k--) {
        split.unshift({ size: newGroup[k], stride: newGroup[k] === 1 ? 0 : merged.stride * inner, repeat: 1 });
        inner *= newGroup[k];
      }
      out.push(...split);
    }
  }
  return i === old.length ? out : undefined;
}

/** Merges outer..inner dims into one: a contiguous chain, or (kv heads, broadcast group) -> repeat. */
function mergeDims(nested: ViewDim[]): ViewDim | undefined {
  if (nested.length === 1) return nested[0];
  const group = nested.flatMap((d) => d.parts ?? [d]);
  if (group.length === 2 && group[1].stride === 0 && group[0].repeat === 1) {
    return { size: group[0].size * group[1].size, stride: group[0].stride, repeat: group[1].size };
  }
  const size = group.reduce((a, d) => a * d.size, 1);
  if (group.some((d) => d.repeat !== 1)) return undefined;
  for (let k = 0; k + 1 < group.length; k++) {
    if (group[k].stride !== group[k + 1].stride * group[k + 1].size) return { size, stride: NaN, repeat: 1, parts: group };
  }
  return { size, stride: group.at(-1)!.stride, repeat: 1 };
}

/** A compound dim split into dims of these sizes along its parts' boundaries (undefined if they do not align). */
function splitCompound(merged: ViewDim, sizes: readonly number[]): ViewDim[] | undefined {
  const parts = merged.parts!;
  const out: ViewDim[] = [];
  let p = 0;
  for (const size of sizes) {
    if (size === 1) { out.push({ size: 1, stride: 0, repeat: 1 }); continue; }
    const taken: ViewDim[] = [];
    let product = 1;
    while (product < size && p < parts.length) { taken.push(parts[p]); product *= parts[p++].size; }
    if (product !== size) return undefined;
    out.push(mergeDims(taken)!);
  }
  return p === parts.length ? out : undefined;
}

/** The scalar factor of a Mul/Div by a constant, and the other operand; undefined otherwise. */
function scaling(m: Matcher, n: Node): { factor: number; input: string } | undefined {
  if (n.op !== 'Mul' && n.op !== 'Div') return undefined;
  const pick = (c: string, x: string) => {
    const k = m.scalar(c);
    return k !== undefined && m.shape(x).join() === m.shape(n.outputs[0]).join() ? { factor: n.op === 'Mul' ? k : 1 / k, input: x } : undefined;
  };
  return pick(n.inputs[1], n.inputs[0]) ?? (n.op === 'Mul' ? pick(n.inputs[0], n.inputs[1]) : undefined);
}

const VIEW_OPS = ['Cast', 'Transpose', 'Unsqueeze', 'Squeeze', 'Expand', 'Reshape'];

/**
 * Walks back from `value` through view ops and scalar scalings; returns the view of `value` relative
 * to each point of that chain it can be expressed from, deepest source first (the last entry is
 * `value` itself, an identity view).
 */
export function traceViews(m: Matcher, value: string): View[] {
  const chain: Node[] = [];
  for (let v = value; ;) {
    const n = m.def(v);
    if (!n || n.domain !== '') break;
    const sc = scaling(m, n);
    if (sc) { chain.unshift(n); v = sc.input; continue; }
    if (!VIEW_OPS.includes(n.op) || (n.op === 'Cast' && !isFloat(m.type(n.inputs[0]).dtype))) break;
    chain.unshift(n);
    v = n.inputs[0];
  }
  const views: View[] = [];
  for (let start = 0; start <= chain.length; start++) {
    const source = start === 0 ? (chain.length ? scaling(m, chain[0])?.input ?? chain[0].inputs[0] : value) : chain[start - 1].outputs[0];
    let dims: ViewDim[] | undefined = contiguous(m.shape(source));
    let scale = 1;
    for (const n of chain.slice(start)) {
      const sc = scaling(m, n);
      if (sc) scale *= sc.factor;
      else dims = step(m, n, dims);
      if (!dims) break;
    }
    if (dims && !dims.some((d) => d.parts)) views.push({ source, dims, scale, nodes: chain.slice(start) });
  }
  return views;
}

/** Which of the 4-D layouts 'bshd' / 'bhsd' of `sourceShape` a [B, H, S, D] view reads, if any. */
export function layoutOf(view: View, sourceShape: readonly number[]): { layout: 'bshd' | 'bhsd'; kvHeads: number } | undefined {
  if (view.dims.length !== 4 || sourceShape.length !== 4) return undefined;
  const [b, h, s, d] = view.dims;
  for (const layout of ['bshd', 'bhsd'] as const) {
    const [B, H, S, D] = layout === 'bshd' ? [sourceShape[0], sourceShape[2], sourceShape[1], sourceShape[3]] : sourceShape;
    const st = strides(sourceShape);
    const [sb, sh, ss, sd] = layout === 'bshd' ? [st[0], st[2], st[1], st[3]] : st;
    const same = (v: ViewDim, size: number, stride: number, repeat = 1) => v.size === size * repeat && v.repeat === repeat && (size === 1 || v.stride === stride);
    const group = h.size / H;
    if (same(b, B, sb) && same(s, S, ss) && same(d, D, sd) && Number.isInteger(group) && same(h, H, sh, group)) return { layout, kvHeads: H };
  }
  return undefined;
}
