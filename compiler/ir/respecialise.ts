/**
 * Re-specialising static axes: an export traced at fixed lengths (Qwen-Image's 256 text tokens and
 * 64 x 64 token grid, a VAE decoder's 128 x 128 latents) becomes the same function at other lengths of
 * some of its input axes. The engine behind `--text-length` (resequence.ts) and `--size` (resize.ts).
 *
 * The changed input axes take their new lengths, the nodes are re-inferred in order, and the ways a
 * trace bakes a length into the graph are mended where they appear:
 *   - a Reshape to a traced constant shape, of a value whose axes changed: each output dim is the
 *     product of the input factors it gathers, old lengths grouped as in the export. A changed length
 *     may be split only along a grid: one given (image tokens = rows x columns), or one an earlier
 *     Reshape formed by merging changed axes (a VAE's H x W flattened for attention, then unflattened);
 *   - an Expand to a traced shape, of a value whose axes changed: the target follows the input;
 *   - a Slice with traced bounds across a changed axis (a joint text + image sequence split back into
 *     its streams): the changed segment's offset on that axis is traced back to the Concat that placed
 *     it (through Reshape, Transpose, MatMul and element-wise ops); a bound at or before the segment
 *     stays, one at or after its end moves by the change, one inside it is refused;
 *   - a traced uniform tensor (a mask of ones) concatenated along an axis whose length is a changed
 *     axis' old length, and whose result meets changed data: it takes the new length;
 *   - what the caller rewrites itself (`rewrite`: traced tables such as RoPE frequencies, which only
 *     the family's semantics can recompute); the values it redefines count as changed sources.
 * What a trace may have fixed otherwise is refused, not guessed at: a Gather with traced indices along
 * a changed axis, a split of a changed length along no grid, a slice into a changed segment; a traced
 * shape that no longer fits fails the re-inference at the node that holds it.
 */
import { fail } from '../errors.ts';
import { lookupOp } from '../ops/registry.ts';
import { type Constant, type Graph, type Node, type TensorType, type ValueType, describeNode, formatType, isStatic } from './graph.ts';
import { type Inferred, inferNode, inferTypes, knownConstantValues, loadTimeValue, propagateKnown } from './infer.ts';
import { Tensor } from './tensor.ts';

/** How a length factors, row-major: image tokens = rows x columns (old dims -> new dims, one per factor). */
export interface Grid { readonly old: readonly number[]; readonly now: readonly number[] }

export interface RewriteContext {
  /** The export as inferred at its own lengths. */
  readonly one: Inferred;
  /** Types and compile-time values of everything defined so far, at the new lengths. */
  readonly types: ReadonlyMap<string, ValueType>;
  readonly known: ReadonlyMap<string, Tensor>;
  /** Values computed from graph inputs (everything else is traced: constant for any input). */
  readonly fromInputs: ReadonlySet<string>;
  /** Adds an inline constant, returning its (fresh) name. */
  constant(base: string, tensor: Tensor): string;
  /** For error messages: the node and the flag. */
  readonly where: string;
}

export interface Respecialisation {
  /** The flag and its value, for messages ("--size 80x48"). */
  readonly flag: string;
  /** Static axes of graph inputs that take new lengths: input -> axis -> length. */
  readonly inputs: ReadonlyMap<string, ReadonlyMap<number, number>>;
  readonly grids?: readonly Grid[];
  /** A family's own mending of a node the rules above cannot: the nodes to run in its place, or undefined. */
  readonly rewrite?: (node: Node, index: number, ctx: RewriteContext) => Node[] | undefined;
}

const prod = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
export const shapeOf = (t: ValueType | undefined): number[] | undefined => (t?.kind === 'tensor' && isStatic(t.shape) ? [...t.shape] : undefined);
const norm = (axis: number, rank: number) => ((axis % rank) + rank) % rank;
/** Ops whose output axes line up with their inputs' (numpy broadcasting from the right). */
const ALIGNED = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Cast', 'CastLike', 'Neg', 'Sqrt', 'Reciprocal', 'Exp', 'Tanh', 'Sigmoid', 'Erf',
  'Softmax', 'Relu', 'Gelu', 'Equal', 'Not', 'And', 'Or', 'Greater', 'Less', 'Abs', 'ReduceMean', 'ReduceSum', 'ReduceMax', 'LayerNormalization',
  'SimplifiedLayerNormalization', 'RMSNormalization', 'Sin', 'Cos', 'Identity', 'Clip', 'Max', 'Min', 'Expand', 'IsNaN']);

/** The changed segment of one axis, in the export's coordinates: it starts at `offset` and holds `length` positions. */
interface Segment { offset: number; length: number }
interface Factor { o: number; n: number }

/** Input axes that change, checked against the graph: each a static axis of a graph input. */
function checkInputs(graph: Graph, spec: Respecialisation): void {
  for (const [name, axes] of spec.inputs) {
    const s = shapeOf(graph.types.get(name));
    if (!graph.inputs.includes(name) || !s) fail(spec.flag, `a graph input '${name}' of static shape`, graph.types.get(name) ? formatType(graph.types.get(name)!) : 'none');
    for (const [axis, length] of axes) {
      if (!(axis >= 0 && axis < s!.length)) fail(spec.flag, `axis ${axis} of input '${name}'`, `rank ${s!.length}`);
      if (!(Number.isInteger(length) && length >= 1)) fail(spec.flag, `a positive length for axis ${axis} of '${name}'`, String(length));
    }
  }
}

export function respecialise(graph: Graph, spec: Respecialisation): Graph {
  checkInputs(graph, spec);
  const flag = spec.flag;
  const one: Inferred = inferTypes(graph);
  const oldShape = (v: string) => shapeOf(one.graph.types.get(v));
  const producer = new Map<string, Node>(), producerIndex = new Map<string, number>();
  graph.nodes.forEach((n, i) => { for (const o of n.outputs) if (o) { producer.set(o, n); producerIndex.set(o, i); } });
  const fromInputs = new Set<string>(graph.inputs);
  for (const n of graph.nodes) if (n.inputs.some((x) => fromInputs.has(x))) for (const o of n.outputs) if (o) fromInputs.add(o);
  /** Values the new lengths reach (for the uniform-fill rule); grows as nodes are re-inferred. */
  const changed = new Set<string>();
  /** Old length -> new length of every changed input axis (a uniform fill of that old length follows it when unambiguous). */
  const lengths = new Map<number, number | null>();
  /** Values a rewrite redefined: sources of changed segments, like the inputs. */
  const rewritten = new Set<string>();

  const types = new Map<string, ValueType>();
  for (const name of graph.constants.keys()) types.set(name, graph.types.get(name)!);
  for (const name of graph.inputs) {
    const t = graph.types.get(name) as TensorType;
    const axes = spec.inputs.get(name);
    if (!axes) { types.set(name, t); continue; }
    types.set(name, { ...t, shape: t.shape.map((x, i) => axes.get(i) ?? x) });
    for (const [axis, now] of axes) {
      const was = (t.shape[axis] as number);
      if (was === now) continue;
      changed.add(name);
      lengths.set(was, lengths.has(was) && lengths.get(was) !== now ? null : now);
    }
  }
  const grids: Grid[] = [...(spec.grids ?? [])];
  const known = knownConstantValues(graph);
  const constants = new Map<string, Constant>(graph.constants);
  const nodes: Node[] = [];
  let fresh = 0;
  const constant = (base: string, tensor: Tensor) => {
    let name = `${base}/respecialised_${fresh++}`;
    while (constants.has(name) || types.has(name)) name = `${base}/respecialised_${fresh++}`; // a second re-specialisation of the same graph
    constants.set(name, { dtype: tensor.dtype, shape: tensor.shape, source: { kind: 'inline', tensor } });
    types.set(name, { kind: 'tensor', dtype: tensor.dtype, shape: tensor.shape });
    known.set(name, tensor);
    return name;
  };
  const ints = (base: string, values: number[]) => constant(base, Tensor.fromNumbers('int64', [values.length], values));
  const changedAxes = (v: string) => {
    const before = oldShape(v), now = shapeOf(types.get(v));
    return before && now ? before.map((x, i) => (x !== now[i] ? i : -1)).filter((i) => i >= 0) : [];
  };
  // A traced value: known now, and the same as in the export — it did not follow the new lengths (a
  // shape computed from a value that changed did, and needs no mending).
  const traced = (x: string) => {
    const now = x ? known.get(x) : undefined, before = x ? one.known.get(x) : undefined;
    if (!now || !before || now.size !== before.size) return false;
    const was = before.toNumbers();
    return now.toNumbers().every((v, i) => v === was[i]);
  };
  const isSource = (v: string, axis: number) => rewritten.has(v) || !!spec.inputs.get(v)?.has(axis);

  /** Where the changed segment of axis `axis` of `v` lies (export coordinates), traced back to the Concat or source that placed it. */
  const segment = (v: string, axis: number, where: string): Segment => {
    const cannot = (why: string): never => fail(where, `the changed segment of the sliced axis traced back to a changed input or a Concat`, why);
    for (let guard = 0; guard < 10000; guard++) {
      if (isSource(v, axis)) return { offset: 0, length: oldShape(v)![axis] };
      if (graph.inputs.includes(v)) return cannot(`input '${v}' does not change axis ${axis}`);
      const n = producer.get(v);
      if (!n) return cannot(`'${v}' is not computed from a changed input`);
      const out = oldShape(v)!;
      const moves = (x: string, a: number) => !!x && changed.has(x) && changedAxes(x).includes(a);
      if (n.op === 'Concat') {
        const cat = norm(Number(n.attrs.axis ?? 0), out.length);
        if (cat !== axis) { const x = n.inputs.find((i) => moves(i, axis)); if (!x) cannot(`no input of ${describeNode(n)} changes axis ${axis}`); v = x!; continue; }
        const moved = n.inputs.filter((i) => moves(i, axis));
        if (moved.length !== 1) cannot(`${describeNode(n)} joins ${moved.length} changed segments`);
        let before = 0;
        for (const i of n.inputs) { if (i === moved[0]) break; before += oldShape(i)![axis]; }
        const inner = segment(moved[0], axis, where);
        return { offset: before + inner.offset, length: inner.length };
      }
      if (n.op === 'Transpose') { v = n.inputs[0]; axis = (n.attrs.perm as number[] | undefined)?.[axis] ?? out.length - 1 - axis; continue; }
      if (n.op === 'Reshape') {
        const inShape = oldShape(n.inputs[0])!, at = prod(out.slice(0, axis));
        const i = inShape.findIndex((_, k) => prod(inShape.slice(0, k)) === at && moves(n.inputs[0], k));
        if (i < 0) cannot(`${describeNode(n)} does not carry axis ${axis} from one input axis`);
        const factor = out[axis] / inShape[i];
        if (!Number.isInteger(factor) || factor < 1) cannot(`${describeNode(n)} splits the changed axis`);
        const inner = segment(n.inputs[0], i, where);
        return { offset: inner.offset * factor, length: inner.length * factor };
      }
      if (n.op === 'MatMul') {
        const r = out.length;
        const pick = axis === r - 1 ? [n.inputs[1], oldShape(n.inputs[1])!.length - 1] : axis === r - 2 ? [n.inputs[0], oldShape(n.inputs[0])!.length - 2] : undefined;
        if (pick) { v = pick[0] as string; axis = pick[1] as number; continue; }
      }
      if (n.op === 'Slice') {
        const sliced = n.inputs[3] ? one.known.get(n.inputs[3])?.toNumbers().map((a) => norm(a, out.length)) : undefined;
        if (!sliced || sliced.includes(axis)) cannot(`${describeNode(n)} slices this axis too`);
        v = n.inputs[0]; continue;
      }
      // (a reduction that drops its axes shifts the ones after them: not traced through)
      if ((ALIGNED.has(n.op) && !(n.op.startsWith('Reduce') && Number(n.attrs.keepdims ?? 1) === 0)) || n.op === 'MatMul') {
        const x = n.inputs.find((i) => i && oldShape(i) && moves(i, axis - (out.length - oldShape(i)!.length)));
        if (!x) cannot(`no input of ${describeNode(n)} carries axis ${axis}`);
        axis -= out.length - oldShape(x!)!.length; v = x!; continue;
      }
      return cannot(`${describeNode(n)} (${n.op}) is not traced through`);
    }
    return cannot('a cycle');
  };

  /** Values a changed input reaches, looking ahead of the re-inference (rewritten values join as they are redefined). */
  const reached = new Set<string>(changed);
  for (const n of graph.nodes) if (n.inputs.some((x) => reached.has(x))) for (const o of n.outputs) if (o) reached.add(o);
  /** Does a value defined by node `index` meet changed data later (a node reading both)? */
  const meetsChanged = (index: number, value: string) => {
    const reach = new Set([value]);
    for (const m of graph.nodes.slice(index + 1)) {
      if (!m.inputs.some((x) => reach.has(x))) continue;
      if (m.inputs.some((x) => reached.has(x) && !reach.has(x))) return true;
      for (const o of m.outputs) if (o) reach.add(o);
    }
    return false;
  };

  const ctx = (where: string): RewriteContext => ({ one, types, known, fromInputs, constant, where });

  graph.nodes.forEach((original, index) => {
    const where = `${graph.file}: ${describeNode(original, index)} (${flag})`;
    const replaced = spec.rewrite?.(original, index, ctx(where));
    for (const node of replaced ?? [mend(original, index, where)]) {
      const outs = inferNode(node, types, known, where, graph.opset);
      node.outputs.forEach((name, i) => name && types.set(name, outs[i]));
      propagateKnown(node, types, known, lookupOp(node)!);
      if (node.inputs.some((x) => changed.has(x))) for (const o of node.outputs) if (o) changed.add(o);
      nodes.push(node);
    }
    if (replaced) for (const o of original.outputs) if (o) { rewritten.add(o); changed.add(o); reached.add(o); }
  });

  function mend(original: Node, index: number, where: string): Node {
    let node = original;
    if (node.op === 'Reshape' && !node.domain && traced(node.inputs[1]) && changedAxes(node.inputs[0]).length) node = mendReshape(node, where);
    if (node.op === 'Expand' && !node.domain && traced(node.inputs[1]) && changedAxes(node.inputs[0]).length) node = mendExpand(node);
    if (node.op === 'Slice' && !node.domain && changedAxes(node.inputs[0]).length) node = remapSlice(node, where);
    if ((node.op === 'Split' || node.op === 'SplitToSequence') && !node.domain && node.inputs[1] && changedAxes(node.inputs[0]).length) node = remapSplit(node, where);
    if (node.op === 'Concat' && !node.domain) node = mendFills(node, index);
    if (node.op === 'GatherND' && !node.domain && !fromInputs.has(node.inputs[1]) && changedAxes(node.inputs[0]).length) node = regridGather(node, where);
    else if ((node.op === 'Gather' || node.op === 'GatherElements') && !fromInputs.has(node.inputs[1]) && changedAxes(node.inputs[0]).length) {
      const axis = norm(Number(node.attrs.axis ?? 0), oldShape(node.inputs[0])!.length);
      if (node.op === 'GatherElements' || changedAxes(node.inputs[0]).includes(axis)) fail(where, 'no traced index into a changed axis', `${node.op} of '${node.inputs[0]}' along a changed axis`);
    }
    return node;
  }

  /**
   * A GatherND with traced indices over changed axes: an integer nearest upsampling (how the exporter
   * writes nearest-exact interpolation, Qwen-Image's VAE) is regenerated for the new lengths; the
   * indices must be exactly that grid in the export — component c of indices[i_0, ..., i_m-1] is
   * floor(i_c / k_c), k_c the integer factor — or the node is refused.
   */
  function regridGather(node: Node, where: string): Node {
    const refuse = (found: string): never => fail(where, 'traced GatherND indices that are an integer nearest upsampling of the gathered axes (batch_dims 0)', found);
    const [data, indices] = node.inputs;
    const value = known.get(indices) ?? loadTimeValue(graph, indices, producerIndex);
    if (!value) return refuse(`indices '${indices}' that are not computed from constants alone`);
    const dIn = oldShape(data)!, dNow = shapeOf(types.get(data))!, iShape = value.shape;
    const m = iShape[iShape.length - 1];
    if (Number(node.attrs.batch_dims ?? 0) !== 0 || iShape.length !== m + 1) return refuse(`indices [${iShape}]`);
    const factors = iShape.slice(0, m).map((o, a) => o / dIn[a]);
    if (!factors.every((k) => Number.isInteger(k) && k >= 1)) return refuse(`indices [${iShape}] for data [${dIn}]`);
    const grid = (dims: number[]) => {
      const out: number[] = [], outDims = dims.slice(0, m).map((d, a) => d * factors[a]), total = prod(outDims);
      for (let t = 0; t < total; t++) {
        let rest = t;
        const at = outDims.map((_, a) => { const stride = prod(outDims.slice(a + 1)); const i = Math.floor(rest / stride); rest %= stride; return i; });
        for (let a = 0; a < m; a++) out.push(Math.floor(at[a] / factors[a]));
      }
      return { out, shape: [...outDims, m] };
    };
    const was = grid(dIn), have = value.toNumbers();
    if (have.length !== was.out.length || have.some((x, i) => x !== was.out[i])) return refuse('indices other than the nearest-upsampling grid');
    const now = grid(dNow);
    return { ...node, inputs: [data, constant(indices, Tensor.fromNumbers('int64', now.shape, now.out))] };
  }

  /** A traced Reshape target: each output dim the product of the input factors it gathers (file header). */
  function mendReshape(node: Node, where: string): Node {
    const inOld = oldShape(node.inputs[0])!, inNow = shapeOf(types.get(node.inputs[0]))!, outOld = oldShape(node.outputs[0])!;
    const target = known.get(node.inputs[1])!.toNumbers();
    const walked = walkReshape(inOld, inNow, outOld, grids);
    if (typeof walked === 'string') {
      // An inferred (-1) dim takes whatever the input now holds; only a fixed one must be mended.
      if (target.includes(-1)) return node;
      return fail(where, `a traced Reshape target that regroups the changed axes whole, or along a grid`, `[${target}] for [${inOld}] -> [${inNow}]: ${walked}`);
    }
    for (const g of walked.merged) if (!grids.some((x) => same(x.old, g.old) && same(x.now, g.now))) grids.push(g);
    const mended = target.map((t, j) => (t > 0 && walked.dims[j] !== outOld[j] ? walked.dims[j] : t));
    return same(mended, target) ? node : { ...node, inputs: [node.inputs[0], ints(node.inputs[1], mended), ...node.inputs.slice(2)] };
  }

  /** A traced Expand target follows its input's changed axes (aligned from the right). */
  function mendExpand(node: Node): Node {
    const inOld = oldShape(node.inputs[0])!, inNow = shapeOf(types.get(node.inputs[0]))!;
    const target = known.get(node.inputs[1])!.toNumbers();
    const lead = target.length - inOld.length;
    const mended = target.map((t, k) => (k >= lead && inOld[k - lead] !== inNow[k - lead] && t === inOld[k - lead] ? inNow[k - lead] : t));
    return same(mended, target) ? node : { ...node, inputs: [node.inputs[0], ints(node.inputs[1], mended)] };
  }

  /** A traced uniform Concat input of a changed axis' old length takes the new length, where the result meets changed data. */
  function mendFills(node: Node, index: number): Node {
    const out = oldShape(node.outputs[0]);
    if (!out) return node;
    const axis = norm(Number(node.attrs.axis ?? 0), out.length);
    let inputs = node.inputs;
    node.inputs.forEach((x, k) => {
      const v = known.get(x), s = oldShape(x);
      if (!x || fromInputs.has(x) || !v || !s || !traced(x)) return;
      const now = lengths.get(s[axis]);
      if (!now || now === s[axis]) return;
      const values = v.toNumbers();
      if (!values.every((e) => e === values[0]) || !meetsChanged(index, node.outputs[0])) return;
      const shape = s.map((d, i) => (i === axis ? now : d));
      const fill = Tensor.fromNumbers(v.dtype, shape, new Array(prod(shape)).fill(values[0]));
      inputs = inputs.map((y, i) => (i === k ? constant(x, fill) : y));
    });
    return inputs === node.inputs ? node : { ...node, inputs };
  }

  /** Where bound `b` of axis `axis` of `data` goes: at or before the changed segment it stays, at or after its end it moves by the change. */
  function moveBound(data: string, axis: number, b: number, where: string, segments: Map<number, Segment>): number {
    const size = oldShape(data)![axis];
    const at = Math.min(Math.max(b < 0 ? b + size : b, 0), size);
    if (!segments.has(axis)) segments.set(axis, segment(data, axis, where));
    const seg = segments.get(axis)!;
    if (at <= seg.offset) return at;
    if (at >= seg.offset + seg.length) return at + shapeOf(types.get(data))![axis] - size;
    return fail(where, `bounds outside the changed segment [${seg.offset}, ${seg.offset + seg.length}) of axis ${axis}`, `bound ${b}`);
  }

  /** A Split with traced sizes across a changed axis: the parts' boundaries move as slice bounds do. */
  function remapSplit(node: Node, where: string): Node {
    const data = node.inputs[0], rank = oldShape(data)!.length;
    const axis = norm(Number(node.attrs.axis ?? 0), rank);
    if (!changedAxes(data).includes(axis)) return node;
    if (!traced(node.inputs[1])) fail(where, 'traced (constant) split sizes across a changed axis', 'sizes computed from the inputs');
    const sizes = known.get(node.inputs[1])!.toNumbers();
    if (sizes.length < 2) return node; // one size: SplitToSequence's equal parts, or a single part, follow the axis
    const segments = new Map<number, Segment>();
    let at = 0;
    const ends = sizes.map((d) => moveBound(data, axis, (at += d), where, segments));
    const mended = ends.map((e, k) => e - (k ? ends[k - 1] : 0));
    return { ...node, inputs: [data, ints(node.inputs[1], mended), ...node.inputs.slice(2)] };
  }

  /** A Slice across changed axes with traced bounds: bounds past the changed segment move with it. */
  function remapSlice(node: Node, where: string): Node {
    const [data, starts, ends, axesIn, steps] = node.inputs;
    const inOld = oldShape(data)!;
    const axes = axesIn ? known.get(axesIn)?.toNumbers().map((a) => norm(a, inOld.length)) : inOld.map((_, i) => i);
    const moved = changedAxes(data);
    if (axes && !axes.some((a) => moved.includes(a))) return node;
    if (![starts, ends, axesIn, steps].every((x) => !x || traced(x))) fail(where, 'traced (constant) bounds on a slice of a changed axis', 'bounds computed from the inputs');
    const st = known.get(starts)!.toNumbers(), en = known.get(ends)!.toNumbers();
    if (steps && known.get(steps)!.toNumbers().some((s) => s !== 1)) fail(where, 'a slice of step 1 across a changed axis', 'another step');
    const segments = new Map<number, Segment>(); // one backward trace per axis, for both its bounds
    const mendBound = (b: number, axis: number) => moveBound(data, axis, b, where, segments);
    const newStarts = st.map((b, k) => (moved.includes(axes![k]) ? mendBound(b, axes![k]) : b));
    const newEnds = en.map((b, k) => (moved.includes(axes![k]) ? mendBound(b, axes![k]) : b));
    return { ...node, inputs: [data, ints(starts, newStarts), ints(ends, newEnds), ...node.inputs.slice(3)] };
  }

  const inputTypes = new Map(graph.types);
  for (const name of [...graph.inputs, ...constants.keys()]) inputTypes.set(name, types.get(name)!);
  for (const o of graph.outputs) if (!types.has(o)) fail(flag, `graph output '${o}' to be computed`, 'no producer');
  return { ...graph, nodes, constants, types: inputTypes };
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The output dims of a Reshape whose input axes changed (inOld -> inNow), grouping factors as the
 * export grouped them (outOld), and the grids it forms by merging changed factors; or why it cannot.
 * A changed axis may be read as the factors of any grid of its lengths; every reading that walks
 * must agree.
 */
export function walkReshape(inOld: readonly number[], inNow: readonly number[], outOld: readonly number[], grids: readonly Grid[]): { dims: number[]; merged: Grid[] } | string {
  const readings: Factor[][][] = inOld.map((o, i) => {
    const n = inNow[i];
    if (o === n) return [[{ o, n }]];
    const along = grids.filter((g) => prod(g.old) === o && prod(g.now) === n).map((g) => g.old.map((x, k) => ({ o: x, n: g.now[k] })));
    return [[{ o, n }], ...along];
  });
  let found: { dims: number[]; merged: Grid[] } | undefined, why = 'no reading of the changed axes';
  const tryAll = (i: number, picked: Factor[][]): void => {
    if (i === readings.length) {
      const r = walk(picked.flat(), outOld);
      if (typeof r === 'string') { why = r; return; }
      if (found && !same(found.dims, r.dims)) { why = `two readings disagree ([${found.dims}] or [${r.dims}])`; found = undefined; throw why; }
      found = r;
      return;
    }
    for (const f of readings[i]) tryAll(i + 1, [...picked, f]);
  };
  try { tryAll(0, []); } catch { return why; }
  return found ?? why;
}

function walk(factorsIn: Factor[], outOld: readonly number[]): { dims: number[]; merged: Grid[] } | string {
  const fs = factorsIn.filter((f) => !(f.o === 1 && f.n === 1));
  if (fs.some((f) => f.o === 1)) return 'a changed axis of length 1';
  const dims: number[] = [], merged: Grid[] = [];
  let k = 0;
  for (const d of outOld) {
    let need = d, now = 1;
    const took: Factor[] = [];
    while (need > 1) {
      if (k >= fs.length) return `output dim ${d} past the input's factors`;
      const f = fs[k];
      if (need % f.o === 0) { now *= f.n; need /= f.o; took.push(f); k++; }
      else if (f.o % need === 0 && f.o === f.n) { now *= need; took.push({ o: need, n: need }); fs[k] = { o: f.o / need, n: f.o / need }; need = 1; }
      else return `a changed length ${f.o} (now ${f.n}) split at ${need}`;
    }
    if (took.length > 1 && took.some((f) => f.o !== f.n)) merged.push({ old: took.map((f) => f.o), now: took.map((f) => f.n) });
    dims.push(now);
  }
  if (k < fs.length) return 'input factors left over';
  return { dims, merged };
}
