/**
 * fuse-gemm-residual: a gated residual add after an FP8 GEMM goes into the own GEMM's epilogue.
 *
 *   y = QLinear(xq, xs, wq, ws[, b]);  m = Mul(y, gate);  out = Add(r, m)
 *     =>  out = QLinear(xq, xs, wq, ws, b or '', gate, r){epilogue: "residual"}
 *
 * Why: a DiT block adds each attention and MLP output into its residual stream through a per-batch
 * gate (Flux.2's and Qwen-Image's gate_msa / gate_mlp). Left to the row kernel after the GEMM, that
 * kernel reads y and r and writes out before it normalises out for the next GEMM (Mul+Add+LayerNorm+
 * Modulate+Quantize: 7 bytes an element); in the GEMM's epilogue the GEMM reads r's tile instead of
 * nothing and writes out instead of y, and the row kernel reads out alone (LayerNorm+Modulate+Quantize:
 * 3 bytes an element). The GEMM is bound by its tensor cores; the row kernel by memory.
 * The meaning is unchanged: QLinear's residual epilogue is defined as those Mul and Add (their
 * roundings included), and the kernel computes it bit for bit (templates/gemm_fp8.cu.njk).
 *
 * Where: `options` (compile.ts horizontalFor: the own FP8 GEMM runs the model's FP8 GEMMs with fast
 * accumulation and its scales in its epilogue). A QLinear fuses when its y feeds only the Mul, the Mul
 * feeds only the Add, the gate is one row of N a batch (compiler/ops/quant.ts residualGateLayout) that
 * the kernel takes (compiler/codegen/gemm.ts residualGateFits), r is a dense array of y's shape, both
 * y's type bf16, the bias absent or bf16, and the own kernel will run it: it takes the GEMM alone, or the
 * pair it makes with another such GEMM of the same N and K (fuse-horizontal groups those: a double
 * block's text stream beside its image stream). A fused QLinear that ends up neither
 * (makeUnfuseGemmResidual, after fuse-horizontal) gets its Mul and Add back, marked epilogue "none"
 * so that the next round of passes does not fuse it again (and fuses its Mul and Add into a row kernel).
 */
import { ownGemmTakes, ownGemmTakesAsTwins, residualGateFits, type ScaledTypes } from '../compiler/codegen/gemm.ts';
import { isDense, resolveView } from '../compiler/codegen/views.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { consumers } from '../compiler/ir/graph.ts';
import { isResidualQLinear, qlinearGemmN, residualGateLayout } from '../compiler/ops/quant.ts';
import type { Pass } from './pass.ts';

const RULE = 'QLinear -> Mul(gate) -> Add(residual) => QLinear residual epilogue';
const UNDO = 'residual QLinear the own GEMM does not run => QLinear, Mul, Add';

interface TypeInfo { dtype?: string; shape?: readonly unknown[] }
const typeOf = (graph: Graph, v: string) => graph.types.get(v) as TypeInfo | undefined;
const staticShape = (t: TypeInfo | undefined) => (t?.shape?.every((d) => typeof d === 'number') ? (t.shape as number[]) : undefined);
const rows = (shape: readonly number[]) => shape.slice(0, -1).reduce((a, b) => a * b, 1);

/** A QLinear's GEMM as the own kernel sees it: M rows of X, N (W's rows: a GLU QLinear's Y is narrower), K, and its scales' and bias's types. */
export function gemmOf(graph: Graph, q: Node) {
  const x = staticShape(typeOf(graph, q.inputs[0])), y = staticShape(typeOf(graph, q.outputs[0]));
  if (!x || !y) return undefined;
  const scaled: ScaledTypes = { xs: typeOf(graph, q.inputs[1])?.dtype ?? '', ws: typeOf(graph, q.inputs[3])?.dtype ?? '', ...(q.inputs[4] ? { bias: typeOf(graph, q.inputs[4])?.dtype ?? '' } : {}) };
  return { m: rows(x), n: qlinearGemmN(q, y.at(-1)!), k: x.at(-1)!, scaled };
}

/** Whether r is one dense array (the kernel copies it by a tensor map), not a strided window of another value. */
function denseValue(graph: Graph, r: string): boolean {
  try {
    return isDense(resolveView(graph, r, `residual '${r}'`).dims);
  } catch {
    return false;
  }
}

/** A candidate's GEMM and the names the rewrite needs, or undefined. */
function candidate(graph: Graph, q: Node, users: Map<string, number[]>, outputs: ReadonlySet<string>) {
  // Any epilogue attribute, "none" (given back) included, is not a candidate.
  if (q.domain !== 'dc' || q.op !== 'QLinear' || q.attrs.format !== 'fp8' || q.attrs.accumulate !== 'sm90' || q.attrs.promote || q.attrs.epilogue || q.attrs.glu) return undefined;
  const y = q.outputs[0], ys = staticShape(typeOf(graph, y)), gemm = gemmOf(graph, q);
  if (!ys || !gemm || typeOf(graph, y)?.dtype !== 'bfloat16' || outputs.has(y) || (gemm.scaled.bias && gemm.scaled.bias !== 'bfloat16')) return undefined;
  const [mulAt] = users.get(y) ?? [];
  if (users.get(y)?.length !== 1 || graph.nodes[mulAt].op !== 'Mul' || graph.nodes[mulAt].domain) return undefined;
  const mul = graph.nodes[mulAt], gate = mul.inputs[0] === y ? mul.inputs[1] : mul.inputs[0];
  const gs = staticShape(typeOf(graph, gate)), layout = gs && residualGateLayout(gs, ys);
  if (mul.inputs[0] === mul.inputs[1] || typeOf(graph, gate)?.dtype !== 'bfloat16' || !layout || !residualGateFits(layout)) return undefined;
  const [addAt] = users.get(mul.outputs[0]) ?? [];
  if (users.get(mul.outputs[0])?.length !== 1 || outputs.has(mul.outputs[0]) || graph.nodes[addAt].op !== 'Add' || graph.nodes[addAt].domain) return undefined;
  const add = graph.nodes[addAt], r = add.inputs[0] === mul.outputs[0] ? add.inputs[1] : add.inputs[0];
  if (add.inputs[0] === add.inputs[1] || typeOf(graph, r)?.dtype !== 'bfloat16' || staticShape(typeOf(graph, r))?.join() !== ys.join() || !denseValue(graph, r)) return undefined;
  return { ...gemm, mulAt, addAt, gate, r, out: add.outputs[0] };
}

export const makeFuseGemmResidual = (options: { minTiles: number }): Pass => ({
  name: 'fuse-gemm-residual',
  rules: [RULE],
  run(graph, ctx) {
    const users = consumers(graph), outputs = new Set(graph.outputs);
    const found = graph.nodes.map((q) => candidate(graph, q, users, outputs));
    // Taken alone, or in a pair fuse-horizontal groups (ownGemmTakesAsTwins, its rule).
    const takes = (i: number) => {
      const c = found[i]!;
      return ownGemmTakes(c.m, c.n, c.k, 'bfloat16', c.scaled, options.minTiles)
        || found.some((o, j) => !!o && j !== i && o.n === c.n && o.k === c.k && ownGemmTakesAsTwins(Math.max(o.m, c.m), Math.min(o.m, c.m), c.n, c.k, c.scaled, options.minTiles));
    };
    const fused = new Map<number, Node>(), removed = new Set<number>();
    found.forEach((c, i) => {
      if (!c || !takes(i)) return;
      const q = graph.nodes[i];
      const inputs = [...q.inputs.slice(0, 4), q.inputs[4] ?? '', c.gate, c.r];
      // At the Add's place: every input of the three is made by then (the order stays topological).
      fused.set(c.addAt, { ...q, inputs, outputs: [c.out], attrs: { ...q.attrs, epilogue: 'residual' } });
      removed.add(i).add(c.mulAt);
    });
    if (!fused.size) return graph;
    ctx.count(RULE, fused.size);
    const nodes = graph.nodes.flatMap((n, i) => (fused.has(i) ? [fused.get(i)!] : removed.has(i) ? [] : [n]));
    return { ...graph, nodes };
  },
});

export const makeUnfuseGemmResidual = (options: { minTiles: number }): Pass => ({
  name: 'unfuse-gemm-residual',
  rules: [UNDO],
  run(graph, ctx) {
    const undone = new Map<number, Node[]>();
    graph.nodes.forEach((q, i) => {
      if (!isResidualQLinear(q)) return;
      const g = gemmOf(graph, q)!;
      if (ownGemmTakes(g.m, g.n, g.k, 'bfloat16', g.scaled, options.minTiles)) return;
      const y = `${q.outputs[0]}/gemm`, m = `${q.outputs[0]}/gated`;
      undone.set(i, [
        { ...q, inputs: q.inputs.slice(0, 5).filter((v, k) => k < 4 || v), outputs: [y], attrs: { ...q.attrs, epilogue: 'none' } },  // 'none': not a candidate again in the next round
        { op: 'Mul', domain: '', name: `${q.name}/gate`, inputs: [y, q.inputs[5]], outputs: [m], attrs: {} },
        { op: 'Add', domain: '', name: `${q.name}/residual`, inputs: [q.inputs[6], m], outputs: [q.outputs[0]], attrs: {} },
      ]);
    });
    if (!undone.size) return graph;
    ctx.count(UNDO, undone.size);
    return { ...graph, nodes: graph.nodes.flatMap((n, i) => undone.get(i) ?? [n]) };
  },
});
