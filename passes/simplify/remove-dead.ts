/**
 * remove-dead: dead code elimination. Walks back from the graph outputs; nodes none of whose
 * outputs are needed are dropped (every op here is pure), and so are constants nobody reads.
 */
import type { Graph } from '../../compiler/ir/graph.ts';
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';

/** Indices of the nodes some graph output needs (walking back from the outputs, in graph order). */
export function liveNodes(graph: Graph): Set<number> {
  const needed = new Set(graph.outputs);
  const live = new Set<number>();
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (!node.outputs.some((o) => o && needed.has(o))) continue;
    live.add(i);
    for (const x of node.inputs) if (x) needed.add(x);
  }
  return live;
}

export const removeDead: Pass = {
  name: 'remove-dead',
  rules: ['unused node'],
  run(graph, ctx) {
    const live = liveNodes(graph);
    const rw = new Rewriter(graph);
    for (let i = graph.nodes.length - 1; i >= 0; i--) {
      if (live.has(i)) continue;
      rw.removeNode(i);
      ctx.count('unused node');
    }
    return rw.apply();
  },
};
