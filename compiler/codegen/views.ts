/**
 * Where a value a kernel reads really lives: views (Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * Split, unit-step Slice; compiler/launches.ts) are not launches and write nothing, so a value
 * reached through them is a strided window of its root: the output of a launch, a graph input or
 * a weight (load-time results included); the memory plan places every view at its root's buffer.
 * Its users: the attention kernels bake the window (element offset, stride per axis) into their
 * source and take the root's buffer; element-wise kernels read the window's strides from a pointer
 * to its first element (plan.ts adds the offset); the other kernels require a dense window.
 *
 * Algorithm: walk producers back while they are view nodes, then replay the chain forward from the
 * root's contiguous strides: Split and Slice move the offset (and Slice steps scale strides);
 * reshapes merge the dims into maximal contiguous runs and split each run into the new dims, which
 * must not straddle two runs (else the value is not a strided window: an error naming it).
 */
import { fail } from '../errors.ts';
import type { Graph, Node } from '../ir/graph.ts';
import { consumers, producers } from '../ir/graph.ts';
import { isLaunch, loadTimeNodes } from '../launches.ts';

export interface Dim { size: number; stride: number }
export interface StridedView { root: string; offset: number; dims: Dim[] }

const RESHAPES = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity']);

const shapeOf = (graph: Graph, v: string) => (graph.types.get(v) as unknown as { shape: number[] }).shape;

/** Whether a window's elements are one dense run: each dim's stride is the size of the dims after it. */
export function isDense(dims: readonly Dim[]): boolean {
  let expected = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    if (dims[i].size === 1) continue;
    if (dims[i].stride !== expected) return false;
    expected *= dims[i].size;
  }
  return true;
}

function contiguous(shape: readonly number[]): Dim[] {
  let acc = 1;
  const dims: Dim[] = new Array(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    dims[i] = { size: shape[i], stride: acc };
    acc *= shape[i];
  }
  return dims;
}

/** A strided reshape: contiguous runs of `dims` split into `target`; undefined if not a view. */
export function reshapeDims(dims: readonly Dim[], target: readonly number[]): Dim[] | undefined {
  const runs: Dim[] = [];
  for (const d of dims.filter((x) => x.size !== 1)) {
    const last = runs.at(-1);
    if (last && last.stride === d.stride * d.size) runs[runs.length - 1] = { size: last.size * d.size, stride: d.stride };
    else runs.push({ ...d });
  }
  const out: Dim[] = [];
  let run = 0, left = runs[0]?.size ?? 1;
  for (const size of target) {
    if (size === 1) { out.push({ size: 1, stride: 0 }); continue; }
    if (run >= runs.length || left % size !== 0) return undefined;
    left /= size;
    out.push({ size, stride: runs[run].stride * left });
    if (left === 1) left = runs[++run]?.size ?? 1;
  }
  return run === runs.length ? out : undefined;
}

function constantInts(graph: Graph, v: string | undefined): number[] | undefined {
  const c = v ? graph.constants.get(v) : undefined;
  return c && c.source.kind === 'inline' ? c.source.tensor.toNumbers() : undefined;
}

function step(graph: Graph, node: Node, value: string, view: StridedView, where: string): StridedView {
  const outShape = shapeOf(graph, value);
  if (RESHAPES.has(node.op)) {
    const dims = reshapeDims(view.dims, outShape);
    if (!dims) fail(where, 'a value a kernel can read as a strided window of its buffer', `${node.op} -> ${value}`);
    return { ...view, dims };
  }
  const rank = view.dims.length;
  const norm = (a: number) => (a < 0 ? a + rank : a);
  if (node.op === 'Split') {
    const axis = norm((node.attrs.axis as number | undefined) ?? 0);
    const k = node.outputs.indexOf(value);
    const start = node.outputs.slice(0, k).reduce((a, o) => a + shapeOf(graph, o)[axis], 0);
    return { ...view, offset: view.offset + start * view.dims[axis].stride, dims: view.dims.map((d, i) => (i === axis ? { ...d, size: outShape[i] } : d)) };
  }
  if (node.op === 'Slice') {
    const starts = constantInts(graph, node.inputs[1]);
    const axes = node.inputs[3] ? constantInts(graph, node.inputs[3]) : starts?.map((_, i) => i);
    const steps = node.inputs[4] ? constantInts(graph, node.inputs[4]) : starts?.map(() => 1);
    if (!starts || !axes || !steps) fail(where, 'a Slice with compile-time starts, axes and steps', value);
    const dims = view.dims.map((d, i) => ({ ...d, size: outShape[i] }));
    let offset = view.offset;
    axes.forEach((a0, i) => {
      const a = norm(a0), size = view.dims[a].size;
      const s = starts[i] < 0 ? starts[i] + size : starts[i];
      const start = steps[i] > 0 ? Math.min(Math.max(s, 0), size) : Math.min(Math.max(s, 0), size - 1);
      offset += start * view.dims[a].stride;
      dims[a].stride = view.dims[a].stride * steps[i];
    });
    return { ...view, offset, dims };
  }
  return fail(where, 'a view op', node.op);
}

/** The root buffer of `value` and the strided window `value` is of it. */
const indexCache = new WeakMap<Graph, { made: Map<string, number>; users: Map<string, number[]>; loadTime: Set<number> }>();
function indexOf(graph: Graph) {
  let index = indexCache.get(graph);
  if (!index) indexCache.set(graph, (index = { made: producers(graph), users: consumers(graph), loadTime: loadTimeNodes(graph) }));
  return index;
}

export function resolveView(graph: Graph, value: string, where: string): StridedView {
  const { made, users, loadTime } = indexOf(graph);
  const chain: { node: Node; value: string }[] = [];
  let root = value;
  for (;;) {
    const i = made.get(root);
    if (i === undefined || loadTime.has(i) || graph.constants.has(root) || graph.inputs.includes(root)) break;
    const node = graph.nodes[i];
    if (isLaunch(graph, node, users)) break;
    chain.unshift({ node, value: root });
    root = node.inputs[0];
  }
  let view: StridedView = { root, offset: 0, dims: contiguous(shapeOf(graph, root)) };
  for (const { node, value: v } of chain) view = step(graph, node, v, view, where);
  return view;
}
