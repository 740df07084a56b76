/**
 * Text-length re-specialisation (`npx compile --text-length T`): a graph exported with a static text
 * length S0 (Qwen-Image's export pads every prompt to 256 tokens) becomes the same function of a
 * text of T tokens, so a short prompt runs a short sequence — as diffusers runs the prompt's own length.
 *
 * The text inputs are `encoder_hidden_states` and every other graph input named `encoder_hidden_states*`
 * or `txt_ids`; each holds S0 on axis 1, which becomes T. The nodes are re-inferred in order, and the
 * three ways a trace bakes S0 into the graph are mended where they appear:
 *   - a Reshape to a traced constant shape, of a value whose text axis changed: the target entry that
 *     carries that axis (same prefix product; an axis merged with the dims after it scales) follows it;
 *   - a Slice with traced bounds across an axis whose length changed (the joint text+image sequence
 *     split back into its streams): the text segment's offset on that axis is traced back to the
 *     Concat that placed it (through Reshape, Transpose, MatMul and element-wise ops); a bound at or
 *     before the segment stays, one at or after its end moves by the change, one inside it is refused;
 *   - a Slice of a traced table (data that depends on no graph input) that cuts exactly S0 rows, and
 *     whose result later meets text data (the RoPE frequencies of the text positions): it cuts T rows
 *     (refused, at that slice, where the table holds fewer past the slice's start). An image table
 *     cut to S0 rows by coincidence (a grid side equal to the text length) would be taken for it: the
 *     image axis then fails the re-inference, and the per-graph test is the proof.
 * What a trace may have fixed otherwise is refused, not guessed at: a Gather with traced indices along a
 * changed axis, two changed axes under one Reshape, a slice into the text segment; a traced shape
 * that no longer fits fails the re-inference at the node that holds it. Graphs with a symbolic text
 * dim need none of this (compile.ts binds it). Proof per graph: test/resequence.test.ts runs the tiny
 * Qwen-Image at a shorter text against the export with the same text padded and masked.
 */
import { fail } from '../errors.ts';
import { lookupOp } from '../ops/registry.ts';
import { type Constant, type Graph, type Node, type TensorType, type ValueType, describeNode, formatType, isStatic } from './graph.ts';
import { type Inferred, inferNode, inferTypes, knownConstantValues, propagateKnown } from './infer.ts';
import { Tensor } from './tensor.ts';

const TEXT_AXIS = 1;
/** Graph inputs that carry the text tokens on axis 1. */
export const isTextInput = (name: string) => name.startsWith('encoder_hidden_states') || name === 'txt_ids';

const prod = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);
const shapeOf = (t: ValueType | undefined): number[] | undefined => (t?.kind === 'tensor' && isStatic(t.shape) ? [...t.shape] : undefined);
const norm = (axis: number, rank: number) => ((axis % rank) + rank) % rank;
/** Ops whose output axes line up with their inputs' (numpy broadcasting from the right). */
const ALIGNED = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Cast', 'CastLike', 'Neg', 'Sqrt', 'Reciprocal', 'Exp', 'Tanh', 'Sigmoid', 'Erf',
  'Softmax', 'Relu', 'Gelu', 'Equal', 'Not', 'And', 'Or', 'Greater', 'Less', 'Abs', 'ReduceMean', 'ReduceSum', 'ReduceMax', 'LayerNormalization',
  'SimplifiedLayerNormalization', 'RMSNormalization', 'Sin', 'Cos', 'Identity', 'Clip', 'Max', 'Min', 'Expand', 'IsNaN']);

/** The text segment of one axis, in the export's coordinates: it starts at `offset` and holds `length` positions. */
interface Segment { offset: number; length: number }

export function resequence(graph: Graph, length: number, flag = '--text-length'): Graph {
  if (!(Number.isInteger(length) && length >= 1)) fail(flag, 'a positive integer (text tokens)', String(length));
  const textInputs = graph.inputs.filter(isTextInput);
  const lead = shapeOf(graph.types.get('encoder_hidden_states'));
  if (!lead || lead.length < 2) fail(`${flag} ${length}`, "a graph input 'encoder_hidden_states' of static shape [batch, text, width]", lead ? `[${lead}]` : 'none');
  const S0 = lead[TEXT_AXIS];
  for (const name of textInputs) {
    const s = shapeOf(graph.types.get(name));
    if (!s || s[TEXT_AXIS] !== S0) fail(`${flag} ${length}`, `text input '${name}' to hold ${S0} tokens on axis ${TEXT_AXIS}, as encoder_hidden_states does`, formatType(graph.types.get(name)!));
  }
  if (length === S0) return graph;

  const one: Inferred = inferTypes(graph);
  const oldShape = (v: string) => shapeOf(one.graph.types.get(v));
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const fromInputs = new Set<string>(graph.inputs), fromText = new Set<string>(textInputs);
  for (const n of graph.nodes) {
    if (n.inputs.some((x) => fromInputs.has(x))) for (const o of n.outputs) if (o) fromInputs.add(o);
    if (n.inputs.some((x) => fromText.has(x))) for (const o of n.outputs) if (o) fromText.add(o);
  }
  const tables = tableSlices(graph, one, fromInputs, fromText, S0);

  const types = new Map<string, ValueType>();
  for (const name of graph.constants.keys()) types.set(name, graph.types.get(name)!);
  for (const name of graph.inputs) {
    const t = graph.types.get(name) as TensorType;
    types.set(name, isTextInput(name) ? { ...t, shape: t.shape.map((x, i) => (i === TEXT_AXIS ? length : x)) } : t);
  }
  const known = knownConstantValues(graph);
  const constants = new Map<string, Constant>(graph.constants);
  const nodes: Node[] = [];
  let fresh = 0;
  const constant = (base: string, values: number[]) => {
    const tensor = Tensor.fromNumbers('int64', [values.length], values);
    const name = `${base}/text${length}_${fresh++}`;
    constants.set(name, { dtype: 'int64', shape: tensor.shape, source: { kind: 'inline', tensor } });
    types.set(name, { kind: 'tensor', dtype: 'int64', shape: tensor.shape });
    known.set(name, tensor);
    return name;
  };
  const changedAxes = (v: string) => {
    const before = oldShape(v), now = shapeOf(types.get(v));
    return before && now ? before.map((x, i) => (x !== now[i] ? i : -1)).filter((i) => i >= 0) : [];
  };
  // A traced value: known now, and the same as in the export — it did not follow the text length (a
  // shape computed from a value that changed did, and needs no mending).
  const traced = (x: string) => {
    const now = x ? known.get(x) : undefined, before = x ? one.known.get(x) : undefined;
    if (!now || !before || now.size !== before.size) return false;
    const was = before.toNumbers();
    return now.toNumbers().every((v, i) => v === was[i]);
  };

  /** Where the text segment of axis `axis` of `v` lies (export coordinates), traced back to the Concat or input that placed it. */
  const segment = (v: string, axis: number, where: string): Segment => {
    const cannot = (why: string): never => fail(where, `the text segment of the sliced axis traced back to a text input or a Concat`, why);
    for (let guard = 0; guard < 10000; guard++) {
      if (textInputs.includes(v)) return axis === TEXT_AXIS ? { offset: 0, length: S0 } : cannot(`'${v}' holds the text on axis ${TEXT_AXIS}, not ${axis}`);
      const n = producer.get(v);
      if (!n) return cannot(`'${v}' is not computed from the text`);
      const out = oldShape(v)!;
      const changed = (x: string, a: number) => !!x && fromText.has(x) && changedAxes(x).includes(a);
      if (n.op === 'Concat') {
        const cat = norm(Number(n.attrs.axis ?? 0), out.length);
        if (cat !== axis) { const x = n.inputs.find((i) => changed(i, axis)); if (!x) cannot(`no input of ${describeNode(n)} changes axis ${axis}`); v = x!; continue; }
        const moved = n.inputs.filter((i) => changed(i, axis));
        if (moved.length !== 1) cannot(`${describeNode(n)} joins ${moved.length} text-length segments`);
        let before = 0;
        for (const i of n.inputs) { if (i === moved[0]) break; before += oldShape(i)![axis]; }
        const inner = segment(moved[0], axis, where);
        return { offset: before + inner.offset, length: inner.length };
      }
      if (n.op === 'Transpose') { v = n.inputs[0]; axis = (n.attrs.perm as number[] | undefined)?.[axis] ?? out.length - 1 - axis; continue; }
      if (n.op === 'Reshape') {
        const inShape = oldShape(n.inputs[0])!, at = prod(out.slice(0, axis));
        const i = inShape.findIndex((_, k) => prod(inShape.slice(0, k)) === at && changed(n.inputs[0], k));
        if (i < 0) cannot(`${describeNode(n)} does not carry axis ${axis} from one input axis`);
        const factor = out[axis] / inShape[i];
        if (!Number.isInteger(factor) || factor < 1) cannot(`${describeNode(n)} splits the text axis`);
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
        const x = n.inputs.find((i) => i && oldShape(i) && changed(i, axis - (out.length - oldShape(i)!.length)));
        if (!x) cannot(`no input of ${describeNode(n)} carries axis ${axis}`);
        axis -= out.length - oldShape(x!)!.length; v = x!; continue;
      }
      return cannot(`${describeNode(n)} (${n.op}) is not traced through`);
    }
    return cannot('a cycle');
  };

  graph.nodes.forEach((original, index) => {
    let node = original;
    const where = `${graph.file}: ${describeNode(node, index)} (${flag} ${length})`;
    if (node.op === 'Reshape' && !node.domain && traced(node.inputs[1])) {
      const axes = changedAxes(node.inputs[0]);
      if (axes.length > 1) fail(where, 'one changed axis under a traced Reshape target', `axes ${axes.join(', ')} of '${node.inputs[0]}'`);
      if (axes.length === 1) {
        const i = axes[0], inOld = oldShape(node.inputs[0])!, inNow = shapeOf(types.get(node.inputs[0]))!, out = oldShape(node.outputs[0])!;
        const target = known.get(node.inputs[1])!.toNumbers();
        const j = out.findIndex((x, k) => prod(out.slice(0, k)) === prod(inOld.slice(0, i)) && x % inOld[i] === 0);
        if (j < 0) fail(where, `the traced target to carry input axis ${i} whole`, `[${target}] for [${inOld}]`);
        if (target[j] > 0) {
          const mended = target.map((x, k) => (k === j ? (x / inOld[i]) * inNow[i] : x));
          node = { ...node, inputs: [node.inputs[0], constant(node.inputs[1], mended), ...node.inputs.slice(2)] };
        }
      }
    }
    if (node.op === 'Slice' && !node.domain) {
      const table = tables.get(original);
      if (table) {
        const rows = oldShape(node.inputs[0])![table.axis];
        if (table.start + length > rows) fail(where, `a text table of at least ${table.start + length} rows (this slice starts at row ${table.start})`, `${rows} rows`);
        node = { ...node, inputs: node.inputs.map((x, k) => (k === 2 ? constant(x, [table.start + length]) : x)) };
      }
      else if (changedAxes(node.inputs[0]).length) node = remapSlice(node, where);
    }
    if ((node.op === 'Gather' || node.op === 'GatherElements' || node.op === 'GatherND') && traced(node.inputs[1]) && changedAxes(node.inputs[0]).length) {
      const axis = node.op === 'GatherND' ? 0 : norm(Number(node.attrs.axis ?? 0), oldShape(node.inputs[0])!.length);
      if (node.op === 'GatherND' || changedAxes(node.inputs[0]).includes(axis)) fail(where, 'no traced index into the text axis', `${node.op} of '${node.inputs[0]}' along a changed axis`);
    }
    const outs = inferNode(node, types, known, where, graph.opset);
    node.outputs.forEach((name, i) => name && types.set(name, outs[i]));
    propagateKnown(node, types, known, lookupOp(node)!);
    nodes.push(node);
  });

  /** A Slice across changed axes with traced bounds: bounds past the text segment move with it. */
  function remapSlice(node: Node, where: string): Node {
    const [data, starts, ends, axesIn, steps] = node.inputs;
    if (![starts, ends, axesIn, steps].every((x) => !x || traced(x))) fail(where, 'traced (constant) bounds on a slice of the text-length axis', 'bounds computed from the inputs');
    const inOld = oldShape(data)!;
    const axes = axesIn ? known.get(axesIn)!.toNumbers().map((a) => norm(a, inOld.length)) : inOld.map((_, i) => i);
    const st = known.get(starts)!.toNumbers(), en = known.get(ends)!.toNumbers();
    if (steps && known.get(steps)!.toNumbers().some((s) => s !== 1)) fail(where, 'a slice of step 1 across the text-length axis', 'another step');
    const moved = changedAxes(data);
    const segments = new Map<number, Segment>(); // one backward trace per axis, for both its bounds
    const mend = (b: number, axis: number) => {
      const size = inOld[axis];
      const at = Math.min(Math.max(b < 0 ? b + size : b, 0), size);
      if (!segments.has(axis)) segments.set(axis, segment(data, axis, where));
      const seg = segments.get(axis)!;
      if (at <= seg.offset) return at;
      if (at >= seg.offset + seg.length) return at + shapeOf(types.get(data))![axis] - size;
      return fail(where, `slice bounds outside the text segment [${seg.offset}, ${seg.offset + seg.length}) of axis ${axis}`, `bound ${b}`);
    };
    if (!axes.some((a) => moved.includes(a))) return node;
    const newStarts = st.map((b, k) => (moved.includes(axes[k]) ? mend(b, axes[k]) : b));
    const newEnds = en.map((b, k) => (moved.includes(axes[k]) ? mend(b, axes[k]) : b));
    return { ...node, inputs: [data, constant(starts, newStarts), constant(ends, newEnds), ...node.inputs.slice(3)] };
  }

  const inputTypes = new Map(graph.types);
  for (const name of [...graph.inputs, ...constants.keys()]) inputTypes.set(name, types.get(name)!);
  for (const o of graph.outputs) if (!types.has(o)) fail(`${flag} ${length}`, `graph output '${o}' to be computed`, 'no producer');
  return { ...graph, nodes, constants, types: inputTypes };
}

/**
 * Slices of traced tables that cut S0 rows which later meet text data (the text positions' RoPE
 * frequencies): node -> the traced start and the sliced axis, so the slice becomes [start, start + T).
 */
function tableSlices(graph: Graph, one: Inferred, fromInputs: Set<string>, fromText: Set<string>, S0: number): Map<Node, { start: number; axis: number }> {
  const found = new Map<Node, { start: number; axis: number }>();
  graph.nodes.forEach((n, index) => {
    if (n.op !== 'Slice' || n.domain || fromInputs.has(n.inputs[0])) return;
    const bounds = n.inputs.slice(1).map((x) => (x ? one.known.get(x)?.toNumbers() : undefined));
    const [st, en, axes, steps] = bounds;
    if (!st || !en || st.length !== 1 || (steps && steps[0] !== 1) || (n.inputs[3] && !axes)) return;
    const inShape = shapeOf(one.graph.types.get(n.inputs[0])), outShape = shapeOf(one.graph.types.get(n.outputs[0]));
    if (!inShape || !outShape) return;
    const axis = norm(axes?.[0] ?? 0, inShape.length);
    if (outShape[axis] !== S0 || inShape[axis] === S0 || st[0] < 0) return;
    // Does the slice's result meet text data? Follow its descendants to a node that also reads the text.
    const reach = new Set(n.outputs.filter(Boolean));
    for (const m of graph.nodes.slice(index + 1)) {
      if (!m.inputs.some((x) => reach.has(x))) continue;
      if (m.inputs.some((x) => fromText.has(x) && !reach.has(x))) { found.set(n, { start: st[0], axis }); return; }
      for (const o of m.outputs) if (o) reach.add(o);
    }
  });
  return found;
}
