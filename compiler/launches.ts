/**
 * Launch accounting for the optimised graph: which nodes become GPU kernel launches, and how many
 * fall in each transformer block.
 *
 * Not launches: views (Reshape, Squeeze, Unsqueeze, Flatten, Identity, Split, unit-step Slice, and
 * an Expand read only by broadcasting consumers), and load-time weight preparation (nodes computed
 * from constants alone, e.g. the weight concatenation of fuse-linear).
 * Counted per launching node: a few nodes launch more than one kernel (NVFP4 activation
 * quantization's two passes; a segmented kernel whose segments compiler/codegen/render.ts
 * renderSegmented declines to merge runs them one by one), as the launch plan shows.
 *
 * Blocks are recognised from the weights a launch reads (`transformer_blocks.7.`, `layers.12.`,
 * ...): a report label, never a rewrite condition. Launches reading no block weight (attention,
 * fused element-wise kernels) count for the block of the latest weight-reading launch before them;
 * a launch reading weights of several blocks (e.g. every block's modulation in one GEMM) is shared,
 * and one reading a large non-block weight (embedders, final projection) is outside the blocks.
 */
import type { Graph, Node } from './ir/graph.ts';
import { consumers, producers } from './ir/graph.ts';

const VIEWS = new Set(['Reshape', 'Squeeze', 'Unsqueeze', 'Flatten', 'Identity', 'Split']);
const BROADCASTING = new Set(['FusedKernel', 'SegmentedKernel', 'Modulate', 'RoPE', 'FusedAttention', 'Add', 'Mul', 'Sub', 'Div', 'Where']);
const BLOCK = /(?:^|[./])((?:single_)?transformer_blocks|layers|blocks|down_blocks|up_blocks|mid_block)\.(\d+)\./;

export interface BlockLaunches {
  /** e.g. "transformer_blocks" */
  kind: string;
  blocks: number;
  min: number;
  max: number;
  /** launches of each block, by index */
  perBlock: number[];
}

export interface LaunchReport {
  total: number;
  outsideBlocks: number;
  shared: number;
  kinds: BlockLaunches[];
}

/** Nodes computed from constants only (weights prepared once at load time). */
export function loadTimeNodes(graph: Graph): Set<number> {
  const constant = new Set(graph.constants.keys());
  const result = new Set<number>();
  graph.nodes.forEach((n, i) => {
    if (n.inputs.length > 0 && n.inputs.every((x) => !x || constant.has(x))) {
      result.add(i);
      n.outputs.forEach((o) => constant.add(o));
    }
  });
  return result;
}

export function isLaunch(graph: Graph, node: Node, users: Map<string, number[]>): boolean {
  if (node.domain === '' && VIEWS.has(node.op)) return false;
  if (node.op === 'Slice') {
    const steps = node.inputs[4];
    return !!steps && !graph.constants.has(steps);
  }
  if (node.op === 'Expand') {
    return !(users.get(node.outputs[0]) ?? []).every((u) => BROADCASTING.has(graph.nodes[u].op));
  }
  return true;
}

export function countLaunches(graph: Graph): LaunchReport {
  const users = consumers(graph);
  const produced = producers(graph);
  const loadTime = loadTimeNodes(graph);
  /** Block tags of the weights a node reads, through load-time preparation nodes. */
  const weightBlocks = (node: Node, depth = 0): string[] => node.inputs.flatMap((x) => {
    const c = graph.constants.get(x);
    if (c) {
      const m = BLOCK.exec(x);
      return m ? [`${m[1]}#${m[2]}`] : c.shape.length >= 2 && c.shape.reduce((a, b) => a * b, 1) > 4096 ? ['outside'] : [];
    }
    const p = produced.get(x);
    return p !== undefined && loadTime.has(p) && depth < 4 ? weightBlocks(graph.nodes[p], depth + 1) : [];
  });
  const counts = new Map<string, Map<number, number>>();
  let total = 0, outside = 0, shared = 0;
  let current: string | undefined;
  // A GEMM with an amax epilogue (passes/fuse-vquant.ts) launches twice: its amax output zeroed, then the GEMM.
  const launchesOf = (node: Node) => ([node, ...(node.body?.nodes ?? [])].some((n) => n.op === 'QLinear' && n.attrs.amax) ? 2 : 1);
  graph.nodes.forEach((node, i) => {
    if (loadTime.has(i) || !isLaunch(graph, node, users)) return;
    const n = launchesOf(node);
    total += n;
    const tags = [...new Set(weightBlocks(node))];
    if (tags.length > 1) { shared += n; return; }
    if (tags.length === 1) current = tags[0] === 'outside' ? undefined : tags[0];
    if (tags[0] === 'outside' || !current) { outside += n; return; }
    const [kind, index] = current.split('#');
    const byIndex = counts.get(kind) ?? new Map<number, number>();
    byIndex.set(Number(index), (byIndex.get(Number(index)) ?? 0) + n);
    counts.set(kind, byIndex);
  });
  const kinds = [...counts].map(([kind, byIndex]) => {
    const perBlock = [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
    return { kind, blocks: perBlock.length, min: Math.min(...perBlock), max: Math.max(...perBlock), perBlock };
  });
  return { total, outsideBlocks: outside, shared, kinds };
}
