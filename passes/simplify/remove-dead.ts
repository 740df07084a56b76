/**
 * remove-dead: dead code elimination. Walks back from the graph outputs; nodes none of whose
 * outputs are needed are dropped (every op here is pure), and so are constants nobody reads.
 */
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';

export const removeDead: Pass = {
  name: 'remove-dead',
  rules: ['unused node'],
  run(graph, ctx) {
    const needed = new Set(graph.outputs);
    const rw = new Rewriter(graph);
    for (let i = graph.nodes.length - 1; i >= 0; i--) {
      const node = graph.nodes[i];
      if (node.outputs.some((o) => o && needed.has(o))) {
        for (const x of node.inputs) if (x) needed.add(x);
      } else {
        rw.removeNode(i);
        ctx.count('unused node');
      }
    }
    return rw.apply();
  },
};
