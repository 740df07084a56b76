/**
 * fuse-attention: scaled dot-product attention, in any exporter's spelling, becomes one
 * dc.FusedAttention that reads q/k/v where the projections left them and carries its prologue.
 *
 *   q, k, v ─ views (Reshape/Transpose/Expand for GQA/scalar scale) ─┐
 *   S = MatMul(q·s₁, kᵀ·s₂) [·s₃] [+ mask]                           │ decomposed (opset 18)
 *   P = Softmax(S, axis=-1) [NaN -> 0 guard];  O = MatMul(P, v)      │
 *   or Attention(q, k, v [, mask]) {scale, is_causal}                 ┘ opset 23
 *   [Transpose(O, 0 2 1 3)]
 *        =>  FusedAttention(mask, [q_i k_i v_i qNorm_i kNorm_i cos_i sin_i] for each segment i)
 *
 * Prologue: when a role's source is a Concat along the sequence (Flux.2/Qwen-Image joint text +
 * image attention) each piece becomes a segment; a RoPE on a piece (or on the whole concat, whose
 * tables are then sliced per piece) and an RMSNormalization over the head dim below it are
 * absorbed when nothing else uses them. Views the fusion reads through become dead and are removed
 * by remove-dead.
 *
 * Must not rewrite: softmax over another axis, a mask that would broadcast the scores to a larger
 * shape, a scores/probabilities tensor used elsewhere.
 */
import { onnxCodeOf } from '../compiler/ir/dtype.ts';
import type { Node } from '../compiler/ir/graph.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { ATTENTION_ROLES } from '../compiler/ops/fused.ts';
import { broadcastShapes } from '../compiler/ops/op.ts';
import { rulePass, type Builder, type Rule } from './canonicalize/rule.ts';
import type { Matcher } from './match.ts';
import { layoutOf, traceViews, type View } from './views.ts';

type Layout = 'bshd' | 'bhsd';
interface RoleSource { view: View; layout: Layout; heads: number }
interface Segment { q: string; k: string; v: string; qNorm?: string; kNorm?: string; cos?: string; sin?: string; tableSlice?: [number, number] }

const kvTotal = (l: number[]) => l.reduce((a, b) => a + b, 0);
const swapLast = (v: View): View => ({ ...v, dims: [v.dims[0], v.dims[1], v.dims[3], v.dims[2]] });

/** A role's deepest 4-D source that the operand is a plain layout of (undefined if none). */
function roleSource(m: Matcher, value: string, transposed: boolean): RoleSource | undefined {
  for (const traced of traceViews(m, value)) {
    const view = transposed ? swapLast(traced) : traced;
    const found = layoutOf(view, m.shape(view.source));
    if (found) return { view, layout: found.layout, heads: found.kvHeads };
  }
  return undefined;
}

/** Per-piece inputs when the source is a Concat along the sequence axis of `layout`. */
function pieces(m: Matcher, source: string, layout: Layout): string[] {
  const cat = m.op(source, 'Concat');
  const seqAxis = layout === 'bshd' ? 1 : 2;
  if (!cat || ((cat.attrs.axis as number) + 4) % 4 !== seqAxis) return [source];
  return [...cat.inputs];
}

/** `tableSlice`: [offset, length] of this piece within RoPE tables that cover all pieces. */
interface Prologue { x: string; norm?: string; eps?: number; cos?: string; sin?: string; tableSlice?: [number, number]; style?: string; absorbed: Node[] }

/** Peels RoPE then RMSNormalization off one piece (each only if private to the attention). */
function peel(m: Matcher, piece: string, users: readonly Node[], absorb = true): Prologue {
  const p: Prologue = { x: piece, absorbed: [] };
  if (!absorb) return p;
  const rope = m.dcOp(p.x, 'RoPE');
  if (rope && m.onlyUsedBy(rope.outputs[0], users) && rope.attrs.to === undefined) {
    Object.assign(p, { x: rope.inputs[0], cos: rope.inputs[1], sin: rope.inputs[2], style: rope.attrs.style as string });
    p.absorbed.push(rope);
  }
  const norm = m.op(p.x, 'RMSNormalization');
  const axis = (norm?.attrs.axis as number | undefined) ?? -1;
  if (norm && (axis === -1 || axis === 3) && m.onlyUsedBy(norm.outputs[0], [...users, ...p.absorbed]) && m.type(norm.outputs[0]).dtype === m.type(norm.inputs[0]).dtype) {
    Object.assign(p, { x: norm.inputs[0], norm: norm.inputs[1], eps: (norm.attrs.epsilon as number | undefined) ?? 1e-5 });
    p.absorbed.push(norm);
  }
  return p;
}

interface Core { q: string; k: string; v: string; mask?: string; scale: number; causal: boolean; output: Node; remove: Node[]; kTransposed: boolean }

function matchDecomposed(m: Matcher, pv: Node): Core | undefined {
  if (m.shape(pv.outputs[0]).length !== 4) return undefined;
  let p = pv.inputs[0];
  const remove: Node[] = [pv];
  const guard = m.op(p, 'Where');
  if (guard) {
    const isNan = m.op(guard.inputs[0], 'IsNaN');
    if (!isNan || m.scalar(guard.inputs[1]) !== 0 || isNan.inputs[0] !== guard.inputs[2]) return undefined;
    remove.push(guard, isNan);
    p = guard.inputs[2];
  }
  const softmax = m.op(p, 'Softmax');
  if (!softmax || ![-1, 3].includes((softmax.attrs.axis as number | undefined) ?? -1)) return undefined;
  remove.push(softmax);
  let s = softmax.inputs[0];
  let mask: string | undefined;
  const add = m.op(s, 'Add');
  if (add) {
    const split = m.commutative(add, (scores, msk) => (m.op(m.skipCasts(scores), 'MatMul', 'Mul', 'Div') ? { scores, msk } : undefined));
    if (!split) return undefined;
    const scoreShape = m.shape(split.scores);
    if (broadcastShapes([scoreShape, m.shape(split.msk)], 'mask').join() !== scoreShape.join()) return undefined;
    mask = split.msk;
    s = split.scores;
    remove.push(add);
  } else {
    // A boolean mask applied by Where(mask, S, -inf): FusedAttention takes the bool mask as it is
    // (true = attend), and a fully masked row gives 0 there as with a -inf bias.
    const where = m.op(s, 'Where');
    if (where && m.type(where.inputs[0]).dtype === 'bool' && m.scalar(where.inputs[2]) === -Infinity && m.op(m.skipCasts(where.inputs[1]), 'MatMul', 'Mul', 'Div')) {
      const scoreShape = m.shape(where.inputs[1]);
      if (broadcastShapes([scoreShape, m.shape(where.inputs[0])], 'mask').join() !== scoreShape.join()) return undefined;
      mask = where.inputs[0];
      s = where.inputs[1];
      remove.push(where);
    }
  }
  let scale = 1;
  for (let n = m.op(s, 'Mul', 'Div'); n; n = m.op(s, 'Mul', 'Div')) {
    const constFirst = n.op === 'Mul' && m.scalar(n.inputs[1]) === undefined;
    const c = m.scalar(n.inputs[constFirst ? 0 : 1]);
    if (c === undefined) return undefined;
    scale *= n.op === 'Mul' ? c : 1 / c;
    remove.push(n);
    s = n.inputs[constFirst ? 1 : 0];
  }
  const qk = m.op(s, 'MatMul');
  if (!qk) return undefined;
  remove.push(qk);
  // The scores and probabilities are private to this attention.
  for (const n of remove) if (n !== pv && !m.onlyUsedBy(n.outputs[0], remove)) return undefined;
  return { q: qk.inputs[0], k: qk.inputs[1], v: pv.inputs[1], mask, scale, causal: false, output: pv, remove, kTransposed: true };
}

function matchOnnxAttention(m: Matcher, node: Node): Core | undefined {
  if (node.outputs.filter(Boolean).length !== 1 || node.inputs.length > 4) return undefined;
  if (((node.attrs.softcap as number | undefined) ?? 0) !== 0 || ((node.attrs.qk_matmul_output_mode as number | undefined) ?? 0) !== 0) return undefined;
  if ([0, 1, 2].some((i) => m.shape(node.inputs[i]).length !== 4)) return undefined;
  const d = m.shape(node.inputs[0])[3];
  return {
    q: node.inputs[0], k: node.inputs[1], v: node.inputs[2], mask: node.inputs[3] || undefined,
    scale: (node.attrs.scale as number | undefined) ?? 1 / Math.sqrt(d), causal: node.attrs.is_causal === 1,
    output: node, remove: [node], kTransposed: false,
  };
}

function build(m: Matcher, core: Core): ReturnType<Rule['match']> {
  const roles = [roleSource(m, core.q, false), roleSource(m, core.k, core.kTransposed), roleSource(m, core.v, false)];
  if (roles.some((r) => !r)) return undefined;
  const [q, k, v] = roles as RoleSource[];
  if (q.heads % k.heads || k.heads !== v.heads) return undefined;
  // Output layout: absorb a transpose back to (B, S, H, D).
  const uses = m.usesOf(core.output.outputs[0]);
  const back = uses.length === 1 && uses[0].op === 'Transpose' && (uses[0].attrs.perm as number[] | undefined)?.join() === '0,2,1,3'
    && m.onlyUsedBy(core.output.outputs[0], [uses[0]]) ? uses[0] : undefined;
  const result = back ?? core.output;
  // Segments: every role split the same way along the sequence, possibly under one RoPE (Flux.2).
  const users = [...core.remove, ...q.view.nodes, ...k.view.nodes, ...v.view.nodes];
  const seqAxis = q.layout === 'bshd' ? 1 : 2;
  const whole = [q, k, v].map((r, i) => {
    const rope = i < 2 ? m.dcOp(r.view.source, 'RoPE') : undefined;
    return rope && rope.attrs.to === undefined && m.onlyUsedBy(rope.outputs[0], users) && m.op(rope.inputs[0], 'Concat') ? rope : undefined;
  });
  const split = [q, k, v].map((r, i) => pieces(m, whole[i]?.inputs[0] ?? r.view.source, r.layout));
  const lengths = split.map((list, r) => list.map((x) => m.shape(x)[[q, k, v][r].layout === 'bshd' ? 1 : 2]));
  const segmented = split[0].length > 1 && split.every((l) => l.length === split[0].length) && new Set(lengths.map((l) => l.join())).size === 1
    && q.layout === k.layout && k.layout === v.layout && (!!whole[0] === !!whole[1]);
  const concatNodes = segmented ? [q, k, v].map((r, i) => m.op(whole[i]?.inputs[0] ?? r.view.source, 'Concat')!) : [];
  const wholeRopes = segmented ? whole.filter((n): n is Node => !!n) : [];
  const pieceUsers = [...users, ...concatNodes, ...wholeRopes];
  if (segmented && concatNodes.some((c) => !m.onlyUsedBy(c.outputs[0], pieceUsers))) return undefined;
  const segmentsOf = (r: number) => (segmented ? split[r] : [[q, k, v][r].view.source]);
  const offsets = lengths[0].map((_, i) => lengths[0].slice(0, i).reduce((a, b) => a + b, 0));
  const prologue = (r: 0 | 1, absorb = true) => segmentsOf(r).map((x, i): Prologue => {
    const p = peel(m, x, pieceUsers, absorb);
    const rope = segmented ? wholeRopes[r] : undefined;
    if (rope && !p.cos) return { ...p, cos: rope.inputs[1], sin: rope.inputs[2], tableSlice: [offsets[i], lengths[0][i]], style: rope.attrs.style as string };
    return p;
  });
  let qp = prologue(0), kp = prologue(1);
  // q and k peeled to different depths (one's RoPE or norm output is read elsewhere): keep both
  // prologues as nodes and fuse the attention on their outputs.
  const differ = (a: Prologue[], b: Prologue[]) => a.some((p, i) => !!p.cos !== !!b[i].cos || !!p.norm !== !!b[i].norm);
  if (!wholeRopes.length && differ(qp, kp)) [qp, kp] = [prologue(0, false), prologue(1, false)];
  // One RoPE table per segment serves q and k: they must have been rotated by the same tables, once.
  const sameTables = qp.every((p, i) => p.cos === kp[i].cos && p.sin === kp[i].sin && String(p.tableSlice) === String(kp[i].tableSlice));
  const rotatedTwice = wholeRopes.length > 0 && [...qp, ...kp].some((p) => p.absorbed.some((n) => n.op === 'RoPE'));
  if (!sameTables || rotatedTwice) return undefined;
  const styles = new Set([...qp, ...kp].map((p) => p.style).filter(Boolean));
  if (styles.size > 1 || qp.some((p, i) => !!p.cos !== !!kp[i].cos) || qp.some((p, i) => !!p.norm !== !!kp[i].norm)) return undefined;
  const eps = [...qp, ...kp].find((p) => p.eps !== undefined)?.eps ?? 1e-6;
  if ([...qp, ...kp].some((p) => p.eps !== undefined && p.eps !== eps)) return undefined;
  const vs = segmentsOf(2);
  const segments: Segment[] = qp.map((p, i) => ({ q: p.x, k: kp[i].x, v: vs[i], qNorm: p.norm, kNorm: kp[i].norm, cos: p.cos, sin: p.sin, tableSlice: p.tableSlice }));
  // A prologue peeled off below a layout change (RoPE applied after the head transpose, as in the
  // text encoders) leaves a Transpose: read through it too.
  const layouts: Layout[] = [q.layout, k.layout, v.layout];
  if (segments.length === 1) {
    (['q', 'k', 'v'] as const).forEach((role, r) => {
      const again = roleSource(m, segments[0][role], false);
      if (again && again.view.nodes.length > 0 && again.view.dims[1].repeat === 1) {
        segments[0][role] = again.view.source;
        layouts[r] = again.layout;
      }
    });
  }
  const headDim = m.shape(segments[0].q)[3];
  const kvLength = lengths[1].reduce((a, b) => a + b, 0);
  const scale = core.scale * q.view.scale * k.view.scale;
  const outType = m.type(result.outputs[0]).dtype;
  if (v.view.scale !== 1) return undefined;
  return {
    remove: back ? [back, ...core.remove] : core.remove,
    build(b: Builder) {
      const extra: Node[] = [];
      // RoPE tables as [S_i, D]: a free reshape of the broadcast [.., S, .., D] tables, after a
      // slice along the sequence when one RoPE covered all segments.
      const table = (name: string | undefined, i: number, which: string): string => {
        if (!name) return '';
        const len = m.shape(segments[i].q)[layouts[0] === 'bshd' ? 1 : 2];
        let src = name;
        const range = segments[i].tableSlice;
        if (range) {
          const [offset, length] = range;
          const shape = m.shape(name);
          const axis = shape.findIndex((d) => d === kvTotal(lengths[0]) );
          const prefix = `${result.outputs[0]}/${which}${i}`;
          const st = b.constant(`${prefix}/starts`, Tensor.fromNumbers('int64', [1], [offset]));
          const en = b.constant(`${prefix}/ends`, Tensor.fromNumbers('int64', [1], [offset + length]));
          const ax = b.constant(`${prefix}/axes`, Tensor.fromNumbers('int64', [1], [axis]));
          src = `${prefix}/slice`;
          extra.push({ op: 'Slice', domain: '', inputs: [name, st, en, ax], outputs: [src], attrs: {}, name: '' });
        }
        const shapeName = b.constant(`${result.outputs[0]}/${which}${i}/shape`, Tensor.fromNumbers('int64', [2], [len, headDim]));
        const out = `${result.outputs[0]}/${which}${i}`;
        extra.push({ op: 'Reshape', domain: '', inputs: [src, shapeName], outputs: [out], attrs: {}, name: '' });
        return out;
      };
      const inputs = [core.mask ?? ''];
      segments.forEach((sg, i) => {
        const row: Record<(typeof ATTENTION_ROLES)[number], string> = {
          q: sg.q, k: sg.k, v: sg.v, qNorm: sg.qNorm ?? '', kNorm: sg.kNorm ?? '', cos: table(sg.cos, i, 'cos'), sin: table(sg.sin, i, 'sin'),
        };
        inputs.push(...ATTENTION_ROLES.map((r) => row[r]));
      });
      return [...extra, {
        op: 'FusedAttention', domain: 'dc', inputs, outputs: [result.outputs[0]], name: core.output.name,
        attrs: {
          segments: segments.length, layouts, outLayout: back ? 'bshd' : 'bhsd', scale,
          causal: core.causal ? 1 : 0, normEps: eps, ropeStyle: [...styles][0] ?? 'interleaved', heads: q.view.dims[1].size,
          kvHeads: k.heads, headDim, kvLength,
          ...(outType !== m.type(segments[0].q).dtype ? { to: onnxCodeOf(outType) } : {}),
        },
      }];
    },
  };
}

const decomposedRule: Rule = {
  name: 'softmax(q·kᵀ)·v => FusedAttention',
  anchors: ['MatMul'],
  match: (m, node) => {
    const core = matchDecomposed(m, node);
    return core && build(m, core);
  },
};

const onnxAttentionRule: Rule = {
  name: 'Attention (opset 23) => FusedAttention',
  anchors: ['Attention'],
  match: (m, node) => {
    const core = matchOnnxAttention(m, node);
    return core && build(m, core);
  },
};

export const fuseAttention = rulePass('fuse-attention', [decomposedRule, onnxAttentionRule]);
