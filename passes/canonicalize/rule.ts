/**
 * Declarative rewrite rules and the one engine that applies them.
 *
 * A rule names the op types it can be anchored at and a `match(m, node)` that either declines or
 * returns the nodes the match replaces (`remove`) and a `build` that makes the replacement. The
 * replacement reuses the output names of the replaced values, so uses need no redirection, and is
 * inserted where the last removed node stood (all its inputs are defined by then). Matches are
 * collected first and applied together afterwards; a node claimed by one match is never part of
 * another. Nodes are visited from the outputs backwards, so a rule anchored at the root of its
 * pattern sees the largest instance first (a weighted norm before the bare norm inside it).
 */
import type { Node } from '../../compiler/ir/graph.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import { Matcher } from '../match.ts';
import type { Pass, PassContext } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';
import type { Graph } from '../../compiler/ir/graph.ts';

export interface Builder {
  /** Adds an inline constant and returns its name. */
  constant(name: string, value: Tensor): string;
}

export interface Match {
  remove: Node[];
  build(b: Builder): Node[];
}

export interface Rule {
  name: string;
  anchors: readonly string[];
  match(m: Matcher, node: Node): Match | undefined;
}

export function applyRules(graph: Graph, ctx: PassContext, rules: readonly Rule[]): Graph {
  const m = new Matcher(graph, ctx.known);
  const rw = new Rewriter(graph);
  const claimed = new Set<number>();
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (claimed.has(i)) continue;
    for (const rule of rules) {
      if (!rule.anchors.includes(node.op)) continue;
      const found = rule.match(m, node);
      if (!found) continue;
      const indices = found.remove.map((n) => m.indexOf(n));
      if (indices.some((k) => claimed.has(k))) continue;
      for (const k of indices) claimed.add(k);
      const built = found.build({ constant: (name, value) => (rw.addConstant(name, value), name) });
      rw.insertBefore(Math.max(...indices), built, new Map());
      for (const k of indices) rw.removeNode(k);
      ctx.count(rule.name);
      break;
    }
  }
  return rw.apply();
}

/** A pass made of rules. */
export function rulePass(name: string, rules: readonly Rule[]): Pass {
  return { name, rules: rules.map((r) => r.name), run: (graph, ctx) => applyRules(graph, ctx, rules) };
}
