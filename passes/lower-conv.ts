/**
 * lower-conv: the VAE decoders' convolutions become dc.FusedConv nodes the conv template renders
 * (compiler/ops/conv.ts says what the op means). Three rules, in this order within one run:
 *
 *  1. nearest upsampling spelled as an index gather (PyTorch's _unsafe_index export):
 *       [Cast f32] -> Transpose(2,3,0,1) -> GatherND(·, idx) -> Transpose(2,3,0,1) -> [Cast back]
 *         =>  Resize(x, scales [1,1,s,s], nearest, asymmetric, floor)
 *     when idx (computed from constants at load time) is exactly (floor(y/s), floor(x/s)); the
 *     Cast pair around it is exact (bf16 -> f32 -> bf16) and drops out.
 *  2. a convolution reduced to 2-D: a zero Pad in front folds into the pads; a 3-D causal conv
 *     over one frame (T = 1 in and out) keeps its one temporal tap that reads the frame — the
 *     others read the zero padding — so
 *       Conv3d(x[N,C,1,H,W], W[Co,C,kT,kh,kw], pads t,h,w)  =>
 *       Reshape(x, [N,C,H,W]) -> Conv2d(·, W[:,:,t_begin], pads h,w) -> Reshape(·, [N,Co,1,H',W'])
 *  3. the 2-D conv (stride 1, dilation 1, group 1) becomes
 *       w_ohwi = Transpose(W, [0,2,3,1])              (load time: the kernel's weight layout)
 *       y = FusedConv(x, w_ohwi, b) { body: Transpose back, [Resize], Conv }
 *     absorbing a nearest integer-scale Resize of H and W whose only reader is this conv.
 * Convolutions that fit none of this (strides, groups, T > 1) stay ONNX Conv: the kernel plan
 * names them as pending.
 */
import type { DType } from '../compiler/ir/dtype.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { consumers, producers } from '../compiler/ir/graph.ts';
import { loadTimeValue } from '../compiler/ir/infer.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { lookupOp } from '../compiler/ops/registry.ts';
import type { Pass } from './pass.ts';
import { Rewriter } from './rewrite.ts';

const RULES = ['gathered nearest upsampling => Resize', 'Pad + Conv => Conv', '3-D conv over one frame => 2-D', 'Conv => FusedConv', 'Resize + Conv => FusedConv'];

const ints = (v: unknown) => (v as number[] | undefined)?.map(Number);
const node = (op: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}, domain = ''): Node => ({ op, domain, inputs, outputs, attrs, name: '' });

const shapeOf = (graph: Graph, v: string) => (graph.types.get(v) as unknown as { shape: number[] }).shape;
const dtypeOf = (graph: Graph, v: string) => (graph.types.get(v) as unknown as { dtype: DType }).dtype;
const PERM = [2, 3, 0, 1];
const samePerm = (n: Node) => JSON.stringify(ints(n.attrs.perm)) === JSON.stringify(PERM);

export const lowerConv: Pass = {
  name: 'lower-conv',
  rules: RULES,
  run(graph, ctx) {
    const producer = producers(graph);
    const users = consumers(graph);
    const rw = new Rewriter(graph);
    const def = (x: string) => (producer.has(x) ? graph.nodes[producer.get(x)!] : undefined);
    const only = (x: string) => (users.get(x) ?? []).length === 1 && !graph.outputs.includes(x);
    const removed = new Set<number>();
    const remove = (n: Node) => { const i = producer.get(n.outputs[0])!; removed.add(i); rw.removeNode(i); };
    /** Rule 1's finds, by the value they stand for: rule 3 fuses them, or a Resize replaces them. */
    const gathered = new Map<string, { x: string; scale: number; at: number; nodes: Node[]; fused?: boolean }>();

    // Rule 1: GatherND upsampling.
    graph.nodes.forEach((g, i) => {
      if (g.op !== 'GatherND' || g.domain !== '' || (g.attrs.batch_dims ?? 0) !== 0) return;
      const t1 = def(g.inputs[0]);
      const t2u = users.get(g.outputs[0]) ?? [];
      if (!t1 || t1.op !== 'Transpose' || !samePerm(t1) || !only(t1.outputs[0]) || t2u.length !== 1 || !only(g.outputs[0])) return;
      const t2 = graph.nodes[t2u[0]];
      if (t2.op !== 'Transpose' || !samePerm(t2)) return;
      const [n, , h, w] = shapeOf(graph, t1.inputs[0]);
      const [, , ho, wo] = shapeOf(graph, t2.outputs[0]);
      if (n !== 1 || ho % h || wo % w || ho / h !== wo / w) return;
      const s = ho / h;
      const idx = loadTimeValue(graph, g.inputs[1], producer);
      if (!idx || idx.shape.join() !== [ho, wo, 2].join()) return;
      for (let y = 0; y < ho; y++) for (let x = 0; x < wo; x++) {
        const k = (y * wo + x) * 2;
        if (idx.get(k) !== Math.floor(y / s) || idx.get(k + 1) !== Math.floor(x / s)) return;
      }
      const nodes = [t1, g, t2];
      // The exact Cast pair around the gather (bf16 -> f32 -> bf16) drops out.
      let src = t1.inputs[0], out = t2.outputs[0];
      const up = def(src), down = (users.get(out) ?? []).length === 1 ? graph.nodes[users.get(out)![0]] : undefined;
      if (up?.op === 'Cast' && down?.op === 'Cast' && dtypeOf(graph, src) === 'float32' && ['bfloat16', 'float16'].includes(dtypeOf(graph, up.inputs[0]))
        && dtypeOf(graph, up.inputs[0]) === dtypeOf(graph, down.outputs[0]) && !graph.outputs.includes(out)) {
        src = up.inputs[0];
        out = down.outputs[0];
        nodes.push(down);
        if (only(up.outputs[0])) nodes.push(up);
      }
      gathered.set(out, { x: src, scale: s, at: i, nodes });
      ctx.count(RULES[0]);
    });

    // Rules 2 and 3: every convolution that reduces to a stride-1 2-D conv.
    graph.nodes.forEach((conv, i) => {
      if (conv.op !== 'Conv' || conv.domain !== '' || removed.has(i)) return;
      const rank = shapeOf(graph, conv.inputs[0]).length;
      const sp = rank - 2;
      const wName = conv.inputs[1];
      const kernel = shapeOf(graph, wName).slice(2);
      if ((conv.attrs.group ?? 1) !== 1 || (conv.attrs.auto_pad ?? 'NOTSET') !== 'NOTSET' || (sp !== 2 && sp !== 3)) return;
      if ((ints(conv.attrs.strides) ?? []).some((s) => s !== 1) || (ints(conv.attrs.dilations) ?? []).some((d) => d !== 1)) return;
      const pads = ints(conv.attrs.pads) ?? new Array(2 * sp).fill(0);
      let x = conv.inputs[0];
      // A constant zero Pad of the spatial axes only folds into the conv's pads.
      const pad = def(x);
      let padNode: Node | undefined;
      if (pad?.op === 'Pad' && (pad.attrs.mode ?? 'constant') === 'constant' && !pad.inputs[3] && only(x)) {
        const pv = ctx.known.get(pad.inputs[1])?.toNumbers();
        const fill = pad.inputs[2] ? ctx.known.get(pad.inputs[2])?.toNumbers() : [0];
        if (pv && pv.length === 2 * rank && fill?.length === 1 && fill[0] === 0 && pv.every((p) => p >= 0) && [0, 1, rank, rank + 1].every((k) => pv[k] === 0)) {
          for (let d = 0; d < sp; d++) { pads[d] += pv[2 + d]; pads[sp + d] += pv[rank + 2 + d]; }
          x = pad.inputs[0];
          padNode = pad;
        }
      }
      const xShape = shapeOf(graph, x), yShape = shapeOf(graph, conv.outputs[0]);
      let tap: number | undefined;
      if (sp === 3) {
        // One frame in, one frame out: only the tap at t_begin reads the frame.
        if (xShape[2] !== 1 || yShape[2] !== 1 || pads[0] >= kernel[0]) return;
        tap = pads[0];
      }
      const name = conv.outputs[0];
      const pads2 = sp === 3 ? [pads[1], pads[2], pads[4], pads[5]] : pads;
      const k2 = sp === 3 ? kernel.slice(1) : kernel;
      const built: Node[] = [];
      const types = new Map<string, { kind: 'tensor'; dtype: DType; shape: number[] }>();
      const wType = dtypeOf(graph, wName);
      const [co, ci] = shapeOf(graph, wName);
      let w = wName;
      if (tap !== undefined) {
        rw.addConstant(`${name}/tap`, Tensor.scalar('int64', tap));
        w = `${name}/w2d`;
        built.push(node('Gather', [wName, `${name}/tap`], [w], { axis: 2 }));
        types.set(w, { kind: 'tensor', dtype: wType, shape: [co, ci, ...k2] });
      }
      const ohwi = `${name}/w_ohwi`;
      built.push(node('Transpose', [w], [ohwi], { perm: [0, 2, 3, 1] }));
      types.set(ohwi, { kind: 'tensor', dtype: wType, shape: [co, k2[0], k2[1], ci] });
      let x4 = x;
      if (sp === 3) {
        x4 = `${name}/x2d`;
        rw.addConstant(`${x4}/shape`, Tensor.fromNumbers('int64', [4], [xShape[0], xShape[1], xShape[3], xShape[4]]));
        built.push(node('Reshape', [x, `${x4}/shape`], [x4]));
        types.set(x4, { kind: 'tensor', dtype: dtypeOf(graph, x), shape: [xShape[0], xShape[1], xShape[3], xShape[4]] });
      }
      // A nearest integer upsampling read only by this conv folds into it.
      let scale = 1;
      const rs = def(x4);
      const found = gathered.get(x4);
      const rsSource = found ?? (rs && rs.op === 'Resize' ? nearestScale(graph, rs, ctx.known) : undefined);
      if (rsSource && only(x4)) {
        scale = rsSource.scale;
        if (found) found.fused = true;
        else remove(rs!);
        x4 = rsSource.x;
        ctx.count(RULES[4]);
      }
      const y2 = sp === 3 ? `${name}/y2d` : name;
      // The body reads the node's own input names (like every fused body) and writes its output.
      const bodyIn = [x4, ohwi, ...(conv.inputs[2] ? [conv.inputs[2]] : [])];
      const bodyNodes: Node[] = [node('Transpose', [ohwi], [`${y2}/w_oihw`], { perm: [0, 3, 1, 2] })];
      if (scale !== 1) {
        bodyNodes.push(node('Constant', [], [`${y2}/scales`], { value: Tensor.fromNumbers('float32', [4], [1, 1, scale, scale]) }),
          node('Resize', [x4, '', `${y2}/scales`], [`${y2}/xu`], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' }));
      }
      bodyNodes.push(node('Conv', [scale !== 1 ? `${y2}/xu` : x4, `${y2}/w_oihw`, ...(conv.inputs[2] ? [conv.inputs[2]] : [])], [y2], { pads: pads2, kernel_shape: k2, strides: [1, 1], dilations: [1, 1], group: 1 }));
      const ops = bodyNodes.filter((n) => n.op !== 'Constant').map((n) => n.op);
      built.push({ ...node('FusedConv', bodyIn, [y2], { ops, upsample: scale }, 'dc'), name: conv.name, body: { inputs: bodyIn, outputs: [y2], nodes: bodyNodes } });
      if (sp === 3) {
        rw.addConstant(`${y2}/shape`, Tensor.fromNumbers('int64', [5], yShape));
        types.set(y2, { kind: 'tensor', dtype: dtypeOf(graph, name), shape: [yShape[0], yShape[1], yShape[3], yShape[4]] });
        built.push(node('Reshape', [y2, `${y2}/shape`], [name]));
        ctx.count(RULES[2]);
      }
      if (padNode) { remove(padNode); ctx.count(RULES[1]); }
      rw.insertBefore(i, built, types);
      rw.removeNode(i);
      ctx.count(RULES[3]);
    });
    // Gathered upsamplings no conv took become Resize nodes.
    for (const [out, f] of gathered) {
      f.nodes.forEach(remove);
      if (f.fused) continue;
      const scales = `${out}/scales`;
      rw.addConstant(scales, Tensor.fromNumbers('float32', [4], [1, 1, f.scale, f.scale]));
      const [n, c, h, w] = shapeOf(graph, f.x);
      rw.insertBefore(f.at, [node('Resize', [f.x, '', scales], [`${out}/resized`], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' })],
        new Map([[`${out}/resized`, { kind: 'tensor', dtype: dtypeOf(graph, f.x), shape: [n, c, h * f.scale, w * f.scale] }]]));
      rw.replaceUses(out, `${out}/resized`);
    }
    return rw.changed ? rw.apply() : graph;
  },
};

/** The source and scale of a nearest Resize that repeats each pixel s x s times (H and W only). */
function nearestScale(graph: Graph, rs: Node, known: ReadonlyMap<string, Tensor>): { x: string; scale: number } | undefined {
  if ((rs.attrs.mode ?? 'nearest') !== 'nearest' || (rs.attrs.coordinate_transformation_mode ?? 'half_pixel') !== 'asymmetric') return undefined;
  if ((rs.attrs.nearest_mode ?? 'round_prefer_floor') !== 'floor' || rs.inputs[3] || rs.attrs.axes !== undefined) return undefined;
  const scales = known.get(rs.inputs[2])?.toNumbers();
  const [n, c, h, w] = shapeOf(graph, rs.inputs[0]);
  const out = shapeOf(graph, rs.outputs[0]);
  if (!scales || scales.length !== 4 || out.length !== 4 || n === undefined) return undefined;
  const s = scales[2];
  if (scales[0] !== 1 || scales[1] !== 1 || scales[3] !== s || !Number.isInteger(s) || s < 2 || out.join() !== [n, c, h * s, w * s].join()) return undefined;
  return { x: rs.inputs[0], scale: s };
}
