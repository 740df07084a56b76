/**
 * fuse-linear: Linear projections of one input become one GEMM.
 *
 *   y₁ = Linear(x, W₁[, b₁]), …, yₙ = Linear(x, Wₙ[, bₙ])         (same x, same weight layout)
 *     =>  W = Concat(W₁…Wₙ) (a weight prepared once, at load);  y = Linear(x, W[, Concat(b)])
 *         y₁…yₙ = Split(y, [N₁…Nₙ], axis=-1)                      (strided views of y)
 *
 * Q/K/V per stream, gate/up of an MLP, and the per-block modulation projections of the shared
 * timestep embedding. Projections whose weights differ in dtype or layout, or where only some have
 * a bias, stay separate.
 */
import { Tensor } from '../compiler/ir/tensor.ts';
import type { Node } from '../compiler/ir/graph.ts';
import { Matcher } from './match.ts';
import type { Pass } from './pass.ts';
import { Rewriter } from './rewrite.ts';

export const fuseLinear: Pass = {
  name: 'fuse-linear',
  rules: ['projections sharing an input => one Linear'],
  run(graph, ctx) {
    const m = new Matcher(graph, ctx.known);
    const groups = new Map<string, number[]>();
    graph.nodes.forEach((n, i) => {
      if (n.domain !== 'dc' || n.op !== 'Linear' || !graph.constants.has(n.inputs[1])) return;
      if (n.inputs[2] && !graph.constants.has(n.inputs[2])) return;
      const w = m.type(n.inputs[1]);
      const key = [n.inputs[0], n.attrs.transB ?? 0, w.dtype, n.inputs[2] ? 'bias' : 'nobias', m.type(n.outputs[0]).dtype].join('|');
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    const rw = new Rewriter(graph);
    for (const members of groups.values()) {
      if (members.length < 2) continue;
      const nodes = members.map((i) => graph.nodes[i]);
      const transB = nodes[0].attrs.transB === 1;
      const sizes = nodes.map((n) => m.shape(n.outputs[0]).at(-1)!);
      const base = `${nodes[0].outputs[0]}/fused`;
      const weight = `${base}/weight`, bias = `${base}/bias`, y = `${base}/out`, sizesName = `${base}/sizes`;
      rw.addConstant(sizesName, Tensor.fromNumbers('int64', [sizes.length], sizes));
      const built: Node[] = [{ op: 'Concat', domain: '', inputs: nodes.map((n) => n.inputs[1]), outputs: [weight], attrs: { axis: transB ? 0 : 1 }, name: '' }];
      const hasBias = !!nodes[0].inputs[2];
      if (hasBias) {
        const flat = nodes.map((n, k) => {
          const name = `${base}/bias${k}`;
          built.push({ op: 'Reshape', domain: '', inputs: [n.inputs[2], `${base}/bias_shape${k}`], outputs: [name], attrs: {}, name: '' });
          rw.addConstant(`${base}/bias_shape${k}`, Tensor.fromNumbers('int64', [1], [sizes[k]]));
          return name;
        });
        built.push({ op: 'Concat', domain: '', inputs: flat, outputs: [bias], attrs: { axis: 0 }, name: '' });
      }
      built.push(
        { op: 'Linear', domain: 'dc', inputs: hasBias ? [nodes[0].inputs[0], weight, bias] : [nodes[0].inputs[0], weight], outputs: [y], attrs: { transB: transB ? 1 : 0 }, name: nodes[0].name },
        { op: 'Split', domain: '', inputs: [y, sizesName], outputs: nodes.map((n) => n.outputs[0]), attrs: { axis: -1 }, name: '' },
      );
      rw.insertBefore(members[0], built, new Map());
      for (const i of members) rw.removeNode(i);
      ctx.count('projections sharing an input => one Linear');
    }
    return rw.apply();
  },
};
