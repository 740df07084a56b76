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
import { CompileError } from '../../compiler/errors.ts';
import { type Graph, type Node, type ValueType, formatType } from '../../compiler/ir/graph.ts';
import { inferNode } from '../../compiler/ir/infer.ts';
import type { Tensor } from '../../compiler/ir/tensor.ts';
import { Matcher } from '../match.ts';
import type { Pass, PassContext } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';

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
      const added = new Map<string, Tensor>();
      const built = found.build({ constant: (name, value) => (added.set(name, value), name) });
      if (!preservesTypes(graph, ctx, built, added)) continue;
      for (const [name, value] of added) rw.addConstant(name, value);
      for (const k of indices) claimed.add(k);
      rw.insertBefore(Math.max(...indices), built, new Map());
      for (const k of indices) rw.removeNode(k);
      ctx.count(rule.name);
      break;
    }
  }
  return rw.apply();
}

/**
 * The safety net under every rule: the replacement must give each value it redefines exactly the
 * type (dtype and shape) it had. A rule whose pattern check missed a broadcast or a dtype change is
 * declined here instead of corrupting the graph.
 */
function preservesTypes(graph: Graph, ctx: PassContext, built: readonly Node[], added: ReadonlyMap<string, Tensor>): boolean {
  const local = new Map<string, ValueType>();
  for (const [name, t] of added) local.set(name, { kind: 'tensor', dtype: t.dtype, shape: t.shape });
  const types = { get: (k: string) => local.get(k) ?? graph.types.get(k), has: (k: string) => local.has(k) || graph.types.has(k) } as ReadonlyMap<string, ValueType>;
  const known = { get: (k: string) => added.get(k) ?? ctx.known.get(k), has: (k: string) => added.has(k) || ctx.known.has(k) } as ReadonlyMap<string, Tensor>;
  try {
    for (const node of built) {
      const outs = inferNode(node, types, known, `rule output ${node.op}`, graph.opset);
      for (const [i, name] of node.outputs.entries()) {
        if (!name) continue;
        const before = graph.types.get(name);
        if (before && formatType(before) !== formatType(outs[i])) return false;
        local.set(name, outs[i]);
      }
    }
  } catch (e) {
    if (e instanceof CompileError) return false;
    throw e;
  }
  return true;
}

/** A pass made of rules. */
export function rulePass(name: string, rules: readonly Rule[]): Pass {
  return { name, rules: rules.map((r) => r.name), run: (graph, ctx) => applyRules(graph, ctx, rules) };
}
