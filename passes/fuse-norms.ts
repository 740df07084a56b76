/**
 * fuse-norms: the VAE decoders' norms over channels, with the affine and activation after them,
 * become one dc.FusedKernel each (body = the matched nodes, so the reference is unchanged), labelled
 * for the norm templates (compiler/codegen/norm.ts) by attrs.kernel:
 *
 *   group-norm   GroupNorm as exported: statistics over groups of channels x pixels
 *     r = Reshape(x[N,C,...], [N,G,L]) -> n = InstanceNormalization(r, s[G], b[G])
 *       -> Reshape(n, x's shape) -> tail
 *   channel-norm Qwen-Image's RMS norm over channels, per pixel
 *     [x = Cast(x0)] -> ReduceL2(x, axes=[1], keepdims) -> [Clip(·, eps)] -> [Expand] -> Div(x, ·) -> tail
 *     (the Expand is dropped: Div broadcasts the [N,1,...] norm the same way)
 *
 *   tail: a chain of element-wise ops (Mul, Add, Sub, Div, Cast, Sigmoid, Relu, Tanh, SiLU) whose
 *         other operand is a scalar or a per-channel vector ([C,1,1], [1,C,1,1], ...), each link
 *         the only reader of the one before (GroupNorm's affine, the RMS norm's gamma, SiLU).
 *
 * Every value inside a group has its only reader inside the group (the input may have others),
 * so nothing computed is lost. Runs before fuse-elementwise, which would otherwise split the group.
 * Reshape/ReduceL2 need their shape/axes as values: the body holds them as Constant nodes.
 */
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { consumers, producers } from '../compiler/ir/graph.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import type { Pass } from './pass.ts';
import { Rewriter } from './rewrite.ts';

const RULES = ['GroupNorm (InstanceNorm on groups) + affine => FusedKernel', 'RMS norm over channels (ReduceL2) + affine => FusedKernel'];
const TAIL_UNARY = new Set(['Cast', 'Sigmoid', 'Relu', 'Tanh']);
const TAIL_BINARY = new Set(['Mul', 'Add', 'Sub', 'Div']);
const FLOATS = new Set([1, 10, 11, 16]); // ONNX float, float16, double, bfloat16

const shapeOf = (graph: Graph, v: string) => (graph.types.get(v) as unknown as { shape: number[] }).shape;

/** How an operand broadcasts against [N, C, ...]: 'scalar', 'channel', or undefined (anything else). */
export function operandClass(shape: readonly number[], out: readonly number[]): 'scalar' | 'channel' | undefined {
  if (shape.reduce((a, b) => a * b, 1) === 1) return 'scalar';
  if (shape.length > out.length) return undefined;
  const padded = [...new Array(out.length - shape.length).fill(1), ...shape];
  return padded.every((d, i) => (i === 1 ? d === out[1] : d === 1)) ? 'channel' : undefined;
}

export const fuseNorms: Pass = {
  name: 'fuse-norms',
  rules: RULES,
  run(graph, ctx) {
    const producer = producers(graph);
    const users = consumers(graph);
    const def = (x: string) => (producer.has(x) ? graph.nodes[producer.get(x)!] : undefined);
    const readers = (x: string) => (users.get(x) ?? []).map((i) => graph.nodes[i]);
    const only = (x: string, n: Node) => readers(x).length === 1 && readers(x)[0] === n && !graph.outputs.includes(x);
    const taken = new Set<Node>();
    const rw = new Rewriter(graph);

    /** The element-wise chain after value v (same shape as v). */
    const tail = (v: string): Node[] => {
      const out = shapeOf(graph, v);
      const chain: Node[] = [];
      for (;;) {
        const us = readers(v);
        if (us.length !== 1 || graph.outputs.includes(v)) break;
        const n = us[0];
        if (taken.has(n) || shapeOf(graph, n.outputs[0]).join() !== out.join() || n.outputs.length !== 1) break;
        const unary = n.domain === '' ? TAIL_UNARY.has(n.op) && (n.op !== 'Cast' || FLOATS.has(n.attrs.to as number)) : n.domain === 'dc' && n.op === 'Silu';
        const binary = n.domain === '' && TAIL_BINARY.has(n.op) && n.inputs.length === 2 && n.inputs.filter((x) => x === v).length === 1
          && operandClass(shapeOf(graph, n.inputs.find((x) => x !== v)!), out) !== undefined
          && (n.op !== 'Div' || n.inputs[0] === v) && (n.op !== 'Sub' || n.inputs[0] === v);
        if (!(unary && n.inputs.length === 1) && !binary) break;
        chain.push(n);
        v = n.outputs[0];
      }
      return chain;
    };

    const emit = (kernel: string, first: Node, members: Node[], bodyNodes: Node[], rule: string) => {
      const produced = new Set(bodyNodes.flatMap((n) => n.outputs));
      const inputs = [...new Set(bodyNodes.flatMap((n) => n.inputs).filter((x) => x && !produced.has(x)))];
      const last = bodyNodes[bodyNodes.length - 1];
      const fused: Node = {
        op: 'FusedKernel', domain: 'dc', inputs, outputs: last.outputs, name: first.name,
        attrs: { ops: bodyNodes.filter((n) => n.op !== 'Constant').map((n) => n.op), kernel },
        body: { inputs, outputs: last.outputs, nodes: bodyNodes },
      };
      const at = Math.max(...members.map((n) => producer.get(n.outputs[0])!));
      for (const n of members) { taken.add(n); const i = producer.get(n.outputs[0])!; if (i !== at) rw.removeNode(i); }
      rw.insertBefore(at, [fused], new Map());
      rw.removeNode(at);
      ctx.count(rule);
    };
    const constant = (name: string, values: readonly number[]): Node =>
      ({ op: 'Constant', domain: '', inputs: [], outputs: [name], attrs: { value: Tensor.fromNumbers('int64', [values.length], values) }, name: '' });

    graph.nodes.forEach((inorm) => {
      if (inorm.op !== 'InstanceNormalization' || inorm.domain !== '' || taken.has(inorm)) return;
      const r1 = def(inorm.inputs[0]);
      const after = readers(inorm.outputs[0]);
      if (r1?.op !== 'Reshape' || !only(r1.outputs[0], inorm) || after.length !== 1 || after[0].op !== 'Reshape' || graph.outputs.includes(inorm.outputs[0])) return;
      const r2 = after[0], x = r1.inputs[0];
      const xs = shapeOf(graph, x), rs = shapeOf(graph, r1.outputs[0]);
      if (xs.length < 3 || rs.length !== 3 || rs[0] !== xs[0] || xs[1] % rs[1] !== 0 || shapeOf(graph, r2.outputs[0]).join() !== xs.join()) return;
      const chain = tail(r2.outputs[0]);
      const out = r2.outputs[0];
      emit('group-norm', r1, [r1, inorm, r2, ...chain], [
        constant(`${out}/groups_shape`, rs), { ...r1, inputs: [x, `${out}/groups_shape`] }, inorm,
        constant(`${out}/shape`, xs), { ...r2, inputs: [inorm.outputs[0], `${out}/shape`] }, ...chain,
      ], RULES[0]);
    });

    graph.nodes.forEach((red) => {
      if (red.op !== 'ReduceL2' || red.domain !== '' || taken.has(red)) return;
      const axes = ctx.known.get(red.inputs[1])?.toNumbers();
      const x = red.inputs[0];
      const xs = shapeOf(graph, x);
      if (!axes || axes.length !== 1 || ![1, 1 - xs.length].includes(axes[0]) || (red.attrs.keepdims ?? 1) !== 1 || xs.length < 3) return;
      let v = red.outputs[0];
      const members: Node[] = [red];
      const next = (op: string) => { const us = readers(v); return us.length === 1 && us[0].op === op && us[0].domain === '' && !graph.outputs.includes(v) ? us[0] : undefined; };
      const clip = next('Clip');
      if (clip) { members.push(clip); v = clip.outputs[0]; }
      const clipped = v;
      const expand = next('Expand');
      if (expand) { members.push(expand); v = expand.outputs[0]; }
      const div = next('Div');
      if (!div || div.inputs[0] !== x || div.inputs[1] !== v) return;
      members.push(div);
      // Every reader of x is in the group: a float Cast producing x joins it (reading the narrow type).
      const cast = def(x);
      const xReaders = readers(x);
      const withCast = cast?.op === 'Cast' && cast.domain === '' && xReaders.length === 2 && xReaders.includes(red) && xReaders.includes(div) && !graph.outputs.includes(x);
      const chain = tail(div.outputs[0]);
      const out = div.outputs[0];
      emit('channel-norm', withCast ? cast! : red, [...(withCast ? [cast!] : []), ...members, ...chain], [
        ...(withCast ? [cast!] : []), constant(`${out}/axes`, [1]), { ...red, inputs: [x, `${out}/axes`] },
        ...(clip ? [clip] : []), { ...div, inputs: [x, clipped] }, ...chain,
      ], RULES[1]);
    });
    return rw.changed ? rw.apply() : graph;
  },
};
