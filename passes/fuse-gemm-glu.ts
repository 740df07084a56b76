/**
 * fuse-gemm-glu: a SwiGLU of an FP8 GEMM's output columns goes into the own GEMM's epilogue.
 *
 *   y = QLinear(xq, xs, wq, ws);  h = SwiGLU(y)                       (the whole of y: gate, then up)
 *     =>  h = QLinear(xq, xs, wq, ws){glu: [0, N/2]}
 *   y = QLinear(...);  p0, .., pk, .. = Split(y, sizes, axis=-1);  h = SwiGLU(pk)
 *     =>  y' = QLinear(...){glu: [lo, sizes[k]/2]};  p0, .., h, .. = Split(y', sizes with sizes[k]/2)
 *
 * Why: an MLP's gate and up projections (Flux.2's SwiGLU; its single blocks fuse them with Q, K and V
 * into one GEMM) write 2·F bf16 columns a token that the next kernel reads only to make F. In the
 * epilogue, where a thread holds gate column j and up column j + 96 of a tile (templates/gemm_fp8.cu.njk),
 * the GEMM writes F columns, and the reader (Concat+Quantize, or Quantize) reads half the bytes.
 * The meaning is QLinear's glu (compiler/ops/quant.ts): the gate and up values rounded to y's type, then
 * SwiGLU's value rounded to it, as the unfused graph's QLinear and SwiGLU round them; the kernel computes
 * silu with the preamble's fast sigmoid, so a value may land a bf16 ulp from the reference's.
 *
 * Where: `options` (compile.ts horizontalFor: the own FP8 GEMM runs the model's FP8 GEMMs). A QLinear
 * fuses when it is FP8 with fast accumulation and no bias, no epilogue, y bf16 and read by the one
 * SwiGLU (or the one Split, one part of which only the SwiGLU reads), the window's first column a
 * multiple of the 192-wide tile and its width of 96, and the own kernel takes the GEMM alone
 * (fuse-horizontal never pairs a GLU QLinear).
 */
import { gluWindowFits, ownGemmTakes } from '../compiler/codegen/gemm.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { consumers } from '../compiler/ir/graph.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { gemmOf } from './fuse-gemm-residual.ts';
import type { Pass } from './pass.ts';
import { Rewriter } from './rewrite.ts';

const RULE = 'QLinear -> SwiGLU => QLinear GLU epilogue';

const typeOf = (graph: Graph, v: string) => graph.types.get(v) as { dtype?: string; shape?: readonly unknown[] } | undefined;

/** The SwiGLU a QLinear's y feeds (directly, or through a part of its one Split: the first whose window the kernel takes), its
 * window, the SwiGLU's index, the Split's. */
function gluOf(graph: Graph, q: Node, users: Map<string, number[]>, known: ReadonlyMap<string, Tensor>) {
  const y = q.outputs[0], readers = users.get(y) ?? [];
  if (readers.length !== 1) return undefined;
  const n = typeOf(graph, y)?.shape?.at(-1);
  if (typeof n !== 'number') return undefined;
  const isSwiglu = (i: number | undefined) => i !== undefined && graph.nodes[i].domain === 'dc' && graph.nodes[i].op === 'SwiGLU';
  const first = graph.nodes[readers[0]];
  if (isSwiglu(readers[0])) return gluWindowFits(0, n / 2) ? { lo: 0, width: n / 2, swiglu: readers[0] } : undefined;
  if (first.domain !== '' || first.op !== 'Split' || first.inputs[0] !== y) return undefined;
  const rank = typeOf(graph, y)!.shape!.length, axis = Number(first.attrs.axis ?? 0);
  const sizes = first.inputs[1] ? known.get(first.inputs[1])?.toNumbers() : undefined;
  if ((axis !== -1 && axis !== rank - 1) || !sizes || sizes.length !== first.outputs.length) return undefined;
  const part = first.outputs.findIndex((p, k) => (users.get(p) ?? []).length === 1 && isSwiglu(users.get(p)![0]) && gluWindowFits(sizes.slice(0, k).reduce((a, b) => a + b, 0), sizes[k] / 2));
  if (part < 0) return undefined;
  const lo = sizes.slice(0, part).reduce((a, b) => a + b, 0);
  return { lo, width: sizes[part] / 2, swiglu: users.get(first.outputs[part])![0], split: readers[0], part, sizes };
}

export const makeFuseGemmGlu = (options: { minTiles: number }): Pass => ({
  name: 'fuse-gemm-glu',
  rules: [RULE],
  run(graph, ctx) {
    const users = consumers(graph), outputs = new Set(graph.outputs);
    const rw = new Rewriter(graph);
    let fused = 0;
    graph.nodes.forEach((q, i) => {
      if (q.domain !== 'dc' || q.op !== 'QLinear' || q.attrs.format !== 'fp8' || q.attrs.accumulate !== 'sm90' || q.attrs.promote || q.attrs.epilogue || q.attrs.glu || q.attrs.amax || q.inputs[4]) return;
      const y = q.outputs[0], gemm = gemmOf(graph, q);
      if (!gemm || typeOf(graph, y)?.dtype !== 'bfloat16' || outputs.has(y)) return;
      const g = gluOf(graph, q, users, ctx.known);
      if (!g || !ownGemmTakes(gemm.m, gemm.n, gemm.k, 'bfloat16', gemm.scaled, options.minTiles)) return;
      const h = graph.nodes[g.swiglu].outputs[0];
      if (outputs.has(graph.nodes[g.swiglu].inputs[0])) return;
      const attrs = { ...q.attrs, glu: [g.lo, g.width] };
      if (g.split === undefined) {
        // y is SwiGLU's input and nothing else's: the QLinear makes h.
        rw.insertBefore(i, [{ ...q, outputs: [h], attrs }], new Map());
      } else {
        // The Split's sizes with the part halved (a new constant: the sizes may be shared), its part renamed h.
        const split = graph.nodes[g.split], sizes = g.sizes!.map((s, k) => (k === g.part ? s / 2 : s));
        const sizesName = `${y}/glu_sizes`;
        rw.addConstant(sizesName, Tensor.fromNumbers('int64', [sizes.length], sizes));
        rw.insertBefore(i, [{ ...q, attrs }], new Map());
        rw.insertBefore(g.split, [{ ...split, inputs: [y, sizesName], outputs: split.outputs.map((p, k) => (k === g.part ? h : p)) }], new Map());
        rw.removeNode(g.split);
      }
      rw.removeNode(i);
      rw.removeNode(g.swiglu);
      fused++;
    });
    if (!fused) return graph;
    ctx.count(RULE, fused);
    return rw.apply();
  },
});
