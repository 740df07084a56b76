/**
 * fold-constants: every node whose outputs are known at compile time (Constant nodes, shape
 * arithmetic on static shapes, small computations on constants — see compiler/ir/infer.ts)
 * becomes a graph constant holding that value.
 *
 *   Shape(x) -> Gather(·, 1) -> Unsqueeze -> Concat -> Reshape(y, ·)   =>   Reshape(y, const [..])
 *
 * Weights are never read: values come only from inline or small integer constants.
 */
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';

export const foldConstants: Pass = {
  name: 'fold-constants',
  rules: ['constant node', 'computed at compile time'],
  run(graph, ctx) {
    const rw = new Rewriter(graph);
    graph.nodes.forEach((node, i) => {
      const outs = node.outputs.filter(Boolean);
      if (outs.length === 0 || !outs.every((o) => ctx.known.has(o))) return;
      if (outs.some((o) => graph.outputs.includes(o) && graph.inputs.includes(o))) return;
      for (const o of outs) rw.addConstant(o, ctx.known.get(o)!);
      rw.removeNode(i);
      ctx.count(node.op === 'Constant' ? 'constant node' : 'computed at compile time');
    });
    return rw.apply();
  },
};
