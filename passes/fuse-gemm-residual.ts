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
 * feeds only the Add, the gate varies along the last axis only (and the first, by batch: [B, 1.., N]),
 * r has y's shape, both y's type bf16, the bias absent or bf16, and the own kernel will run it: it takes
 * the GEMM alone, or as the twin of another such GEMM of the same N and K (fuse-horizontal groups those:
 * a double block's text stream beside its image stream). A fused QLinear that ends up neither
 * (unfuseGemmResidual, after fuse-horizontal) gets its Mul and Add back as an element-wise kernel.
 */
import { ownGemmTakes } from '../compiler/codegen/gemm.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { consumers } from '../compiler/ir/graph.ts';
import { isResidualQLinear } from '../compiler/ops/quant.ts';
import { toposort } from './fuse-elementwise.ts';
import type { Pass } from './pass.ts';

const RULE = 'QLinear -> Mul(gate) -> Add(residual) => QLinear residual epilogue';
const UNDO = 'residual QLinear the own GEMM does not run => QLinear, Mul, Add';

interface TypeInfo { dtype?: string; shape?: readonly unknown[] }
const typeOf = (graph: Graph, v: string) => graph.types.get(v) as TypeInfo | undefined;
const staticShape = (t: TypeInfo | undefined) => (t?.shape?.every((d) => typeof d === 'number') ? (t.shape as number[]) : undefined);

/** A fused QLinear's gate: its batches (1: one row for all) and Y's rows a batch. */
export function residualGate(graph: Graph, node: Node): { batches: number; rowsPerBatch: number } {
  const y = staticShape(typeOf(graph, node.outputs[0]))!, gate = staticShape(typeOf(graph, node.inputs[5]))!;
  const m = y.slice(0, -1).reduce((a, b) => a * b, 1);
  const batches = gate.length === y.length && gate[0] > 1 ? gate[0] : 1;
  return { batches, rowsPerBatch: m / batches };
}

/** A candidate's GEMM shape (M, N, K) and the names the rewrite needs, or undefined. */
function candidate(graph: Graph, q: Node, users: Map<string, number[]>, outputs: ReadonlySet<string>) {
  if (q.domain !== 'dc' || q.op !== 'QLinear' || q.attrs.format !== 'fp8' || q.attrs.accumulate !== 'sm90' || q.attrs.promote || q.attrs.epilogue) return undefined;
  const y = q.outputs[0], yt = typeOf(graph, y), ys = staticShape(yt), xs = staticShape(typeOf(graph, q.inputs[0]));
  if (!ys || !xs || yt?.dtype !== 'bfloat16' || outputs.has(y) || (q.inputs[4] && typeOf(graph, q.inputs[4])?.dtype !== 'bfloat16')) return undefined;
  const [mulAt] = users.get(y) ?? [];
  if (users.get(y)?.length !== 1 || graph.nodes[mulAt].op !== 'Mul' || graph.nodes[mulAt].domain) return undefined;
  const mul = graph.nodes[mulAt], gate = mul.inputs[0] === y ? mul.inputs[1] : mul.inputs[0];
  const gs = staticShape(typeOf(graph, gate)), n = ys.at(-1)!;
  // The gate: bf16, N along the last axis, 1 elsewhere but for the batch axis (y's rank, its first dim).
  if (mul.inputs[0] === mul.inputs[1] || !gs || typeOf(graph, gate)?.dtype !== 'bfloat16' || gs.at(-1) !== n) return undefined;
  if (!gs.slice(0, -1).every((d, i) => d === 1 || (i === 0 && gs.length === ys.length && d === ys[0]))) return undefined;
  const [addAt] = users.get(mul.outputs[0]) ?? [];
  if (users.get(mul.outputs[0])?.length !== 1 || outputs.has(mul.outputs[0]) || graph.nodes[addAt].op !== 'Add' || graph.nodes[addAt].domain) return undefined;
  const add = graph.nodes[addAt], r = add.inputs[0] === mul.outputs[0] ? add.inputs[1] : add.inputs[0];
  if (add.inputs[0] === add.inputs[1] || typeOf(graph, r)?.dtype !== 'bfloat16' || staticShape(typeOf(graph, r))?.join() !== ys.join()) return undefined;
  const m = xs.slice(0, -1).reduce((a, b) => a * b, 1), k = xs.at(-1)!;
  // Several batches: each batch's rows a multiple of 16 (the kernel's rows of one thread share a gate row).
  const batches = gs.length === ys.length && gs[0] > 1 ? gs[0] : 1;
  if (batches > 1 && (m / batches) % 16 !== 0) return undefined;
  return { m, n, k, mulAt, addAt, gate, r, out: add.outputs[0] };
}

const bias16 = (graph: Graph, q: Node) => ({ xs: 'float32', ws: 'float32', ...(q.inputs[4] ? { bias: typeOf(graph, q.inputs[4])!.dtype! } : {}) });

export const makeFuseGemmResidual = (options: { minTiles: number }): Pass => ({
  name: 'fuse-gemm-residual',
  rules: [RULE],
  run(graph, ctx) {
    const users = consumers(graph), outputs = new Set(graph.outputs);
    const found = graph.nodes.map((q) => candidate(graph, q, users, outputs));
    // Taken alone, or as the twin of another candidate of the same N and K (fuse-horizontal's rule).
    const takes = (i: number) => {
      const c = found[i]!, scaled = bias16(graph, graph.nodes[i]);
      if (ownGemmTakes(c.m, c.n, c.k, 'bfloat16', scaled, options.minTiles)) return true;
      return found.some((o, j) => o && j !== i && o.n === c.n && o.k === c.k && o.m > c.m && ownGemmTakes(o.m, c.n, c.k, 'bfloat16', scaled, options.minTiles, c.m));
    };
    const fused = new Map<number, Node>(), removed = new Set<number>();
    found.forEach((c, i) => {
      if (!c || !takes(i)) return;
      const q = graph.nodes[i];
      const inputs = [...q.inputs.slice(0, 4), q.inputs[4] ?? '', c.gate, c.r];
      // At the Add's place: every input of the three is made by then.
      fused.set(c.addAt, { ...q, inputs, outputs: [c.out], attrs: { ...q.attrs, epilogue: 'residual' } });
      removed.add(i).add(c.mulAt);
    });
    if (!fused.size) return graph;
    ctx.count(RULE, fused.size);
    const nodes = graph.nodes.flatMap((n, i) => (fused.has(i) ? [fused.get(i)!] : removed.has(i) ? [] : [n]));
    const types = new Map(graph.types);
    return { ...graph, nodes: toposort(nodes, new Set([...graph.inputs, ...graph.constants.keys()])), types };
  },
});

/** After fuse-horizontal: a residual QLinear the own kernel does not take alone and that found no twin gets its Mul and Add back. */
export const makeUnfuseGemmResidual = (options: { minTiles: number }): Pass => ({
  name: 'unfuse-gemm-residual',
  rules: [UNDO],
  run(graph, ctx) {
    const undone = new Map<number, Node[]>();
    graph.nodes.forEach((q, i) => {
      if (!isResidualQLinear(q)) return;
      const xs = staticShape(typeOf(graph, q.inputs[0]))!, n = staticShape(typeOf(graph, q.outputs[0]))!.at(-1)!;
      if (ownGemmTakes(xs.slice(0, -1).reduce((a, b) => a * b, 1), n, xs.at(-1)!, 'bfloat16', bias16(graph, q), options.minTiles)) return;
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
