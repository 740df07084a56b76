/**
 * cast-like-to-cast: CastLike(x, like) only borrows the dtype of `like`, which is static here, so
 * it becomes Cast(x, to=dtype(like)) and `like` loses a use (often the last: it is then dead).
 *
 *   CastLike(x, like: bfloat16[...])   =>   Cast(x) {to=BFLOAT16}
 */
import { onnxCodeOf } from '../../compiler/ir/dtype.ts';
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';

export const castLikeToCast: Pass = {
  name: 'cast-like-to-cast',
  rules: ['CastLike => Cast'],
  run(graph, ctx) {
    const rw = new Rewriter(graph);
    graph.nodes.forEach((node, i) => {
      if (node.op !== 'CastLike' || node.domain !== '') return;
      const like = graph.types.get(node.inputs[1]);
      if (like?.kind !== 'tensor') return;
      rw.insertBefore(i, [{ ...node, op: 'Cast', inputs: [node.inputs[0]], attrs: { to: onnxCodeOf(like.dtype) } }], new Map());
      rw.removeNode(i);
      ctx.count('CastLike => Cast');
    });
    return rw.apply();
  },
};
