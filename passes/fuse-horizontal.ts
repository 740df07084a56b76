/**
 * fuse-horizontal: independent twin row kernels become one launch (dc.SegmentedKernel), each
 * keeping its own rows, inputs and outputs.
 *
 *   img: q1, s1 = FusedKernel(x_img, shift_img, scale_img){LayerNorm, Modulate, Quantize}   4096 rows
 *   txt: q2, s2 = FusedKernel(x_txt, shift_txt, scale_txt){LayerNorm, Modulate, Quantize}    512 rows
 *     =>  q1, s1, q2, s2 = SegmentedKernel(...){ the two FusedKernels }   one launch, 4608 rows
 *
 * Why: a double-stream transformer block (Flux.2, Qwen-Image) runs every norm, gate and quantize
 * twice, once per stream; the text stream's kernels are small (512 or fewer rows), so each pays a
 * launch and a ramp about as long as its transfer (H100 80GB HBM3, bench/RESULTS.md session 10 call
 * E11: 50-100% of the copy bandwidth against 80-97% for the image-size twins). As one launch they run
 * at the merged size's rate (compiler/codegen/render.ts renderSegmented: CTAs split between the
 * segments; session 12 call G2: e.g. LayerNorm+Modulate+Quantize 35.4 µs against 31.6 + 6.3 alone).
 *
 * Twins: row kernels (a row reduction: LayerNorm, RMSNorm, Softmax, per-token Quantize; fused or
 * alone) with the same body ops and the same row width, so the segments take the same threads and
 * balance by rows. Pairs are found in graph order: each kernel with the nearest later twin within
 * WINDOW nodes that neither depends on it nor feeds it, counting kernels already merged as one node
 * (two merges must not make a cycle). The merged node sits where the earlier kernel was; nodes are
 * re-sorted topologically. Its meaning is its body (compiler/ops/fused-kernel.ts), so the reference
 * is unchanged.
 *
 * Twin GEMMs, where the own FP8 GEMM runs the model (options.gemms): two independent FP8 QLinears of
 * the same N, K, types and attributes become a dc.GroupedGemm, found and placed the same way, where
 * the own kernel takes the pair and would not take the smaller alone (gemmTwinsFit). A double block's
 * thin text-stream GEMMs (Qwen-Image's CFG batch: 64 rows; Flux.2's 512-row out projections) then run
 * as extra tiles in their image-stream twin's last wave (compiler/codegen/gemm.ts twinM) instead of a
 * cuBLASLt launch of their own.
 * Its meaning is its body too.
 */
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { producers } from '../compiler/ir/graph.ts';
import { loadTimeNodes } from '../compiler/launches.ts';
import { ownGemmTakesAsTwins } from '../compiler/codegen/gemm.ts';
import { ROW_OPS } from '../compiler/ops/norm.ts';
import { toposort } from './fuse-elementwise.ts';
import { liveNodes } from './simplify/remove-dead.ts';
import type { Pass } from './pass.ts';

/** How far apart (nodes in graph order) twins may be: a double block's two streams are within it,
 * and a merge never stretches a value's lifetime by more. */
export const WINDOW = 32;

const RULE = 'independent twin row kernels => SegmentedKernel';
const GEMM_RULE = 'independent twin FP8 GEMMs => GroupedGemm';

/** `gemms`: the own FP8 GEMM runs the model's FP8 GEMMs with fast accumulation, taking a launch of at least `minTiles` output tiles. */
export interface HorizontalOptions { gemms?: { minTiles: number } }

const lastAxis = (graph: Graph, n: Node) => {
  const rank = (graph.types.get(n.outputs[0]) as { shape?: readonly unknown[] } | undefined)?.shape?.length ?? 0;
  const axis = (n.attrs.axis as number | undefined) ?? -1;
  return axis === -1 || axis === rank - 1;
};

/** A reduction over each row's last axis that the row template computes (never NVFP4: two passes). */
function rowReduction(graph: Graph, n: Node): boolean {
  if (!ROW_OPS.has(n.op)) return false;
  if (n.op !== 'Quantize') return n.domain === '' && lastAxis(graph, n);
  return n.domain === 'dc' && n.attrs.format !== 'nvfp4' && [-1, undefined].includes(n.attrs.axis as number | undefined);
}

const typeOf = (graph: Graph, v: string) => graph.types.get(v) as { dtype?: string; shape?: readonly unknown[] } | undefined;

/** An FP8 QLinear's GEMM (M rows of X, N, K) where its shapes are static and its Y bf16, as the own kernel's twin needs (no GLU epilogue: the kernel takes it alone). */
function gemmShape(graph: Graph, n: Node): { m: number; n: number; k: number } | undefined {
  if (n.domain !== 'dc' || n.op !== 'QLinear' || n.attrs.format !== 'fp8' || n.attrs.promote || n.attrs.glu) return undefined;
  const x = typeOf(graph, n.inputs[0])?.shape, y = typeOf(graph, n.outputs[0]);
  if (!x?.length || !y?.shape?.length || y.dtype !== 'bfloat16' || [...x, ...y.shape].some((d) => typeof d !== 'number')) return undefined;
  const dims = x as number[];
  return { m: dims.slice(0, -1).reduce((a, b) => a * b, 1), n: y.shape.at(-1) as number, k: dims.at(-1)! };
}

/** The twin key of an FP8 QLinear (N, K, attributes, the scales' and bias's types), or undefined. */
function gemmKey(graph: Graph, n: Node): string | undefined {
  const g = gemmShape(graph, n);
  if (!g) return undefined;
  const [, xs, , ws, bias] = n.inputs;
  // Epilogue "none" (a residual add given back: passes/fuse-gemm-residual.ts) is a plain QLinear's; an
  // amax window and its key mask (passes/fuse-vquant.ts) are each GEMM's own in the launch.
  const { epilogue, amax: _amax, maskKeys: _keys, seqKv: _kv, maskOffset: _offset, ...plain } = n.attrs;
  const attrs = epilogue === undefined || epilogue === 'none' ? plain : { ...plain, epilogue };
  return `QLinear|${g.n}|${g.k}|${JSON.stringify(attrs)}|${typeOf(graph, xs)?.dtype}|${typeOf(graph, ws)?.dtype}|${bias ? typeOf(graph, bias)?.dtype : '-'}`;
}

/** Whether twin QLinears a and b (same key) run as one launch (compiler/codegen/gemm.ts ownGemmTakesAsTwins). */
function gemmTwinsFit(graph: Graph, a: Node, b: Node, minTiles: number): boolean {
  const [ga, gb] = [gemmShape(graph, a)!, gemmShape(graph, b)!];
  const [, xs, , ws, bias] = a.inputs;
  const scaled = { xs: typeOf(graph, xs)!.dtype!, ws: typeOf(graph, ws)!.dtype!, ...(bias ? { bias: typeOf(graph, bias)!.dtype! } : {}) };
  return ownGemmTakesAsTwins(Math.max(ga.m, gb.m), Math.min(ga.m, gb.m), ga.n, ga.k, scaled, minTiles);
}

/** The twin key of a row kernel (body ops, row width), or undefined for anything else. */
function twinKey(graph: Graph, n: Node): string | undefined {
  const fused = n.domain === 'dc' && n.op === 'FusedKernel' && !n.attrs.kernel && !!n.body;
  const body = fused ? n.body!.nodes : [n];
  if (!fused && n.body) return undefined;
  if (!body.some((b) => rowReduction(graph, b)) || body.some((b) => b.op === 'Quantize' && b.attrs.format === 'nvfp4')) return undefined;
  const shape = (graph.types.get(n.outputs[0]) as { shape?: readonly unknown[] } | undefined)?.shape;
  if (!shape?.length || shape.some((d) => typeof d !== 'number')) return undefined;
  return `${body.map((b) => b.op).join('+')}|${shape.at(-1)}`;
}

export const makeFuseHorizontal = (options: HorizontalOptions = {}): Pass => ({
  name: 'fuse-horizontal',
  rules: [RULE, ...(options.gemms ? [GEMM_RULE] : [])],
  run(graph, ctx) {
    const loadTime = loadTimeNodes(graph);
    const producer = producers(graph);
    // Launches only, and live ones (a dead kernel merged with a live twin would run).
    const live = liveNodes(graph);
    const keys = graph.nodes.map((n, i) => (loadTime.has(i) || !live.has(i) ? undefined : twinKey(graph, n) ?? (options.gemms ? gemmKey(graph, n) : undefined)));
    const isGemm = (i: number) => keys[i]!.startsWith('QLinear|');
    const fits = (i: number, j: number) => !isGemm(i) || gemmTwinsFit(graph, graph.nodes[i], graph.nodes[j], options.gemms!.minTiles);
    // Merged kernels so far: node index -> the indices merged with it (itself included).
    const group = new Map<number, number[]>();
    const members = (i: number) => group.get(i) ?? [i];
    /** Whether a value node `from` reads (through any chain of nodes, merged ones as one) is made by `target`'s group. */
    const reaches = (from: number, target: number): boolean => {
      const goal = new Set(members(target));
      const seen = new Set<number>();
      const stack = members(from).flatMap((m) => graph.nodes[m].inputs.map((x) => producer.get(x)));
      while (stack.length) {
        const i = stack.pop();
        if (i === undefined || seen.has(i)) continue;
        if (goal.has(i)) return true;
        for (const m of members(i)) {
          seen.add(m);
          for (const x of graph.nodes[m].inputs) if (x) stack.push(producer.get(x));
        }
      }
      return false;
    };
    const pairs: [number, number][] = [];
    keys.forEach((key, i) => {
      if (!key || group.has(i)) return;
      for (let j = i + 1; j < Math.min(graph.nodes.length, i + 1 + WINDOW); j++) {
        if (keys[j] !== key || group.has(j) || !fits(i, j) || reaches(j, i) || reaches(i, j)) continue;
        group.set(i, [i, j]);
        group.set(j, [i, j]);
        pairs.push([i, j]);
        return;
      }
    });
    if (!pairs.length) return graph;
    const gemmPairs = pairs.filter(([i]) => isGemm(i)).length;
    if (pairs.length > gemmPairs) ctx.count(RULE, pairs.length - gemmPairs);
    if (gemmPairs) ctx.count(GEMM_RULE, gemmPairs);
    const merged = new Map<number, Node | null>();
    for (const [i, j] of pairs) {
      const [a, b] = [graph.nodes[i], graph.nodes[j]];
      const inputs = [...new Set([...a.inputs, ...b.inputs].filter(Boolean))];
      const outputs = [...a.outputs, ...b.outputs];
      const ops = (n: Node) => (n.attrs.ops as readonly string[] | undefined) ?? [n.op];
      merged.set(i, {
        op: isGemm(i) ? 'GroupedGemm' : 'SegmentedKernel', domain: 'dc', inputs, outputs, name: a.name,
        attrs: isGemm(i) ? { gemms: 2 } : { ops: ops(a), segments: 2 },
        body: { inputs, outputs, nodes: [a, b] },
      });
      merged.set(j, null);
    }
    const nodes = graph.nodes.flatMap((n, i) => (merged.has(i) ? (merged.get(i) ? [merged.get(i)!] : []) : [n]));
    return { ...graph, nodes: toposort(nodes, new Set([...graph.inputs, ...graph.constants.keys()])) };
  },
});

/** The row-kernel twins alone (no GEMMs grouped). */
export const fuseHorizontal = makeFuseHorizontal();
