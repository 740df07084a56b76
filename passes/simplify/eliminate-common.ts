/**
 * eliminate-common: common subexpression elimination. Two nodes with the same op, attributes and
 * (already deduplicated) inputs compute the same value; the later one is dropped and its uses
 * redirected. Inline constants with identical contents are merged first, so e.g. the many copies of
 * `Constant [-1]` an exporter emits become one, and so do larger ones (keyed by their bytes' sha256):
 * Qwen-Image's export holds a [1, 4096] bool of ones per block for the attention mask, 60 copies that
 * kept a mask Concat and Where a block alive (118 launches of a CFG step; its data-movement time
 * 0.4 -> 0.0 ms, H100 80GB HBM3, bench/RESULTS.md session 12 call G7). One forward
 * sweep reaches a fixpoint because inputs are canonicalised before a node's key is built.
 */
import type { Graph } from '../../compiler/ir/graph.ts';
import type { AttrValue } from '../../compiler/ir/graph.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';
import { sha256 } from '../../compiler/hash.ts';

/** Constants up to this many elements are keyed by their values, larger ones by their bytes' hash. */
const MAX_KEYED_CONSTANT = 1024;

function attrKey(v: AttrValue): string {
  if (v instanceof Tensor) return `T${v.dtype}[${v.shape}]${v.toNumbers()}`;
  return JSON.stringify(v);
}

function constantKeys(graph: Graph): Map<string, string> {
  const keys = new Map<string, string>();
  for (const [name, c] of graph.constants) {
    if (c.source.kind !== 'inline') continue;
    const t = c.source.tensor;
    const bytes = (a: Exclude<typeof t.data, string[]>) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    const contents = t.dtype === 'string' ? JSON.stringify(t.data)
      : t.size <= MAX_KEYED_CONSTANT ? t.toNumbers().join(',')
      : `#${sha256(bytes(t.data as Exclude<typeof t.data, string[]>))}`;
    keys.set(name, `${t.dtype}[${t.shape}]${contents}`);
  }
  return keys;
}

export const eliminateCommon: Pass = {
  name: 'eliminate-common',
  rules: ['duplicate constant', 'duplicate node'],
  run(graph, ctx) {
    const rw = new Rewriter(graph);
    const canon = new Map<string, string>();
    const firstConst = new Map<string, string>();
    for (const [name, key] of constantKeys(graph)) {
      const first = firstConst.get(key);
      if (first === undefined) firstConst.set(key, name);
      else if (!graph.outputs.includes(name)) {
        canon.set(name, first);
        rw.replaceUses(name, first);
        ctx.count('duplicate constant');
      }
    }
    const seen = new Map<string, readonly string[]>();
    const c = (x: string) => canon.get(x) ?? x;
    graph.nodes.forEach((node, i) => {
      if (node.body) return; // fused kernels are never duplicates worth comparing
      const attrs = Object.keys(node.attrs).sort().map((k) => `${k}=${attrKey(node.attrs[k])}`).join(';');
      const key = `${node.domain}:${node.op}(${node.inputs.map(c).join(',')})[${attrs}]#${node.outputs.length}`;
      const prior = seen.get(key);
      if (!prior || node.outputs.some((o) => graph.outputs.includes(o))) {
        if (!prior) seen.set(key, node.outputs);
        return;
      }
      node.outputs.forEach((o, k) => {
        if (!o) return;
        canon.set(o, prior[k]);
        rw.replaceUses(o, prior[k]);
      });
      rw.removeNode(i);
      ctx.count('duplicate node');
    });
    return rw.apply();
  },
};
