/**
 * lower-sequences: sequence ops become plain tensor ops, so nothing downstream sees a sequence.
 *
 *   s = SplitToSequence(x, split, axis, keepdims)      parts = Split(x, sizes, axis)
 *   y_i = SequenceAt(s, const p_i)               =>    y_i = parts[p_i]        (keepdims=0: Squeeze)
 *
 * Requires static element shapes and compile-time positions (true after specialisation); a
 * sequence used any other way is left alone (and later stages will name it).
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import { consumers, tensorType, type Node, type ValueType } from '../../compiler/ir/graph.ts';
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';

export const lowerSequences: Pass = {
  name: 'lower-sequences',
  rules: ['SplitToSequence+SequenceAt => Split'],
  run(graph, ctx) {
    const rw = new Rewriter(graph);
    const users = consumers(graph);
    graph.nodes.forEach((node, i) => {
      if (node.op !== 'SplitToSequence' || node.domain !== '') return;
      const seqType = graph.types.get(node.outputs[0]);
      const x = graph.types.get(node.inputs[0]);
      if (seqType?.kind !== 'sequence' || x?.kind !== 'tensor') return;
      const uses = (users.get(node.outputs[0]) ?? []).map((u) => graph.nodes[u]);
      if (graph.outputs.includes(node.outputs[0]) || uses.some((u) => u.op !== 'SequenceAt' || !ctx.known.has(u.inputs[1]))) return;
      const rank = x.shape.length;
      const axisAttr = (node.attrs.axis as number | undefined) ?? 0;
      const axis = axisAttr < 0 ? axisAttr + rank : axisAttr;
      const keep = ((node.attrs.keepdims as number | undefined) ?? 1) === 1 || !!node.inputs[1];
      const n = seqType.elements.length;
      const base = node.outputs[0];
      const parts = seqType.elements.map((_, k) => `${base}/part${k}`);
      const sizes = seqType.elements.map((e) => (keep ? (e.shape[axis] as number) : 1));
      const sizesName = `${base}/sizes`;
      rw.addConstant(sizesName, Tensor.fromNumbers('int64', [n], sizes));
      const newNodes: Node[] = [{ op: 'Split', domain: '', inputs: [node.inputs[0], sizesName], outputs: parts, attrs: { axis }, name: node.name }];
      const types = new Map<string, ValueType>(parts.map((p, k) => [p, tensorType(x.dtype, x.shape.map((d, a) => (a === axis ? sizes[k] : d)))]));
      if (!keep) {
        const axesName = `${base}/axes`;
        rw.addConstant(axesName, Tensor.fromNumbers('int64', [1], [axis]));
        parts.forEach((p, k) => {
          newNodes.push({ op: 'Squeeze', domain: '', inputs: [p, axesName], outputs: [`${p}/squeezed`], attrs: {}, name: '' });
          types.set(`${p}/squeezed`, seqType.elements[k]);
        });
      }
      rw.insertBefore(i, newNodes, types);
      rw.removeNode(i);
      const final = keep ? parts : parts.map((p) => `${p}/squeezed`);
      for (const u of users.get(node.outputs[0]) ?? []) {
        const at = graph.nodes[u];
        const p = ctx.known.get(at.inputs[1])!.get(0);
        rw.replaceUses(at.outputs[0], final[p < 0 ? p + n : p]);
        rw.removeNode(u);
      }
      ctx.count('SplitToSequence+SequenceAt => Split');
    });
    return rw.apply();
  },
};
