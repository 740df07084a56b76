/**
 * remove-noops: drops nodes that return their input unchanged, redirecting every use to the input.
 *
 *   Identity(x) | Cast(x, to=dtype(x)) | CastLike(x, like x) | Reshape/Expand/Squeeze/Unsqueeze/
 *   Flatten to x's own shape | Transpose that keeps element order | forward Slice covering all of x |
 *   Concat/Max/Min of one input | Dropout in inference                              =>   x
 *   Transpose that only moves unit dims ([1,3,4] -> [3,1,4])                           =>   Reshape
 *
 * Only where the output's type equals the input's type exactly (same dtype, same static shape).
 * Also a lossless round trip through a wider type:
 *
 *   Cast(Cast(x: bfloat16, to=float32), to=bfloat16)   =>   x
 */
import type { DType } from '../../compiler/ir/dtype.ts';
import { formatType, producers } from '../../compiler/ir/graph.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import type { Pass } from '../pass.ts';
import { Rewriter } from '../rewrite.ts';

const SHAPE_PRESERVING = new Set(['Identity', 'Cast', 'CastLike', 'Reshape', 'Expand', 'Squeeze', 'Unsqueeze', 'Flatten', 'Transpose', 'Slice', 'Concat', 'Max', 'Min', 'Dropout']);
const SINGLE_INPUT = new Set(['Concat', 'Max', 'Min']);

/** Types that hold every value of the key type exactly. */
const EXACT_IN: Partial<Record<DType, readonly DType[]>> = {
  bfloat16: ['float32', 'float64'], float16: ['float32', 'float64'], float32: ['float64'],
  int8: ['int16', 'int32', 'int64'], int16: ['int32', 'int64'], int32: ['int64', 'float64'], uint8: ['int16', 'int32', 'int64'],
  bool: ['int8', 'int32', 'int64', 'uint8'],
};

export const removeNoops: Pass = {
  name: 'remove-noops',
  rules: ['identity', 'cast to same type', 'lossless cast round trip', 'reshape to same shape', 'transpose identity', 'order-keeping transpose => reshape', 'full slice', 'single-input'],
  run(graph, ctx) {
    const rw = new Rewriter(graph);
    const producer = producers(graph);
    graph.nodes.forEach((node, i) => {
      if (node.op === 'Cast' && node.domain === '') {
        const inner = graph.nodes[producer.get(node.inputs[0]) ?? -1];
        const x = inner?.op === 'Cast' ? graph.types.get(inner.inputs[0]) : undefined;
        const mid = graph.types.get(node.inputs[0]), y = graph.types.get(node.outputs[0]);
        if (x && mid && y && x.dtype === y.dtype && EXACT_IN[x.dtype]?.includes(mid.dtype) && !graph.outputs.includes(node.outputs[0])) {
          rw.replaceUses(node.outputs[0], inner.inputs[0]);
          rw.removeNode(i);
          ctx.count('lossless cast round trip');
          return;
        }
      }
      if (!SHAPE_PRESERVING.has(node.op) || node.domain !== '') return;
      const x = node.inputs[0];
      const y = node.outputs[0];
      if (!x || !y || node.outputs.filter(Boolean).length !== 1) return;
      if (SINGLE_INPUT.has(node.op) && node.inputs.filter(Boolean).length !== 1) return;
      const tx = graph.types.get(x), ty = graph.types.get(y);
      if (!tx || !ty) return;
      if (node.op === 'Transpose' && tx.kind === 'tensor' && ty.kind === 'tensor') {
        // Equal types are not enough ([2,2] transposed keeps its type): the non-unit dims must
        // keep their order for the element order to be unchanged. Then it is a free Reshape.
        const perm = (node.attrs.perm as readonly number[] | undefined) ?? tx.shape.map((_, k) => tx.shape.length - 1 - k);
        const moved = perm.filter((p) => tx.shape[p] !== 1);
        if (moved.some((p, k) => k > 0 && p < moved[k - 1])) return;
        if (formatType(tx) !== formatType(ty)) {
          const shapeName = `${y}/shape`;
          rw.addConstant(shapeName, Tensor.fromNumbers('int64', [ty.shape.length], ty.shape as number[]));
          rw.insertBefore(i, [{ op: 'Reshape', domain: '', inputs: [x, shapeName], outputs: [y], attrs: {}, name: node.name }], new Map());
          rw.removeNode(i);
          ctx.count('order-keeping transpose => reshape');
          return;
        }
      }
      if (formatType(tx) !== formatType(ty)) return;
      if (node.op === 'Slice' && node.inputs[4]) {
        const steps = ctx.known.get(node.inputs[4]);
        if (!steps || steps.toNumbers().some((s) => s < 0)) return; // a reversing slice keeps its type
      }
      rw.replaceUses(y, x);
      rw.removeNode(i);
      ctx.count(
        node.op === 'Identity' || node.op === 'Dropout' ? 'identity'
        : node.op === 'Cast' || node.op === 'CastLike' ? 'cast to same type'
        : node.op === 'Transpose' ? 'transpose identity'
        : node.op === 'Slice' ? 'full slice'
        : SINGLE_INPUT.has(node.op) ? 'single-input'
        : 'reshape to same shape');
    });
    return rw.apply();
  },
};
