/**
 * Text-length re-specialisation (`npx compile --text-length T`): a graph exported with a static text
 * length S0 (Qwen-Image's export pads every prompt to 256 tokens) becomes the same function of a
 * text of T tokens, so a short prompt runs a short sequence — as diffusers runs the prompt's own length.
 *
 * The text inputs are `encoder_hidden_states` and every other graph input named `encoder_hidden_states*`
 * or `txt_ids`; each holds S0 on axis 1, which becomes T. respecialise.ts re-infers the graph and mends
 * its traced shapes and slices; one rule is the text's own: a Slice of a traced table (data that
 * depends on no graph input) that cuts exactly S0 rows, and whose result later meets text data (the
 * RoPE frequencies of the text positions), cuts T rows (refused, at that slice, where the table holds
 * fewer past the slice's start). An image table cut to S0 rows by coincidence (a grid side equal to
 * the text length) would be taken for it: the image axis then fails the re-inference, and the
 * per-graph test is the proof. Graphs with a symbolic text dim need none of this (compile.ts binds it).
 * Proof per graph: test/resequence.test.ts runs the tiny Qwen-Image at a shorter text against the
 * export with the same text padded and masked.
 */
import { fail } from '../errors.ts';
import { type Graph, type Node, formatType } from './graph.ts';
import { type Inferred, inferTypes } from './infer.ts';
import { respecialise, shapeOf } from './respecialise.ts';
import { Tensor } from './tensor.ts';

const TEXT_AXIS = 1;
/** Graph inputs that carry the text tokens on axis 1. */
export const isTextInput = (name: string) => name.startsWith('encoder_hidden_states') || name === 'txt_ids';

const norm = (axis: number, rank: number) => ((axis % rank) + rank) % rank;

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
  const tables = tableSlices(graph, inferTypes(graph), textInputs, S0);
  return respecialise(graph, {
    flag: `${flag} ${length}`,
    inputs: new Map(textInputs.map((name) => [name, new Map([[TEXT_AXIS, length]])])),
    rewrite: (node, _index, ctx) => {
      const table = tables.get(node);
      if (!table) return undefined;
      const rows = shapeOf(ctx.one.graph.types.get(node.inputs[0]))![table.axis];
      if (table.start + length > rows) fail(ctx.where, `a text table of at least ${table.start + length} rows (this slice starts at row ${table.start})`, `${rows} rows`);
      const end = ctx.constant(node.inputs[2], Tensor.fromNumbers('int64', [1], [table.start + length]));
      return [{ ...node, inputs: node.inputs.map((x, k) => (k === 2 ? end : x)) }];
    },
  });
}

/**
 * Slices of traced tables that cut S0 rows which later meet text data (the text positions' RoPE
 * frequencies): node -> the traced start and the sliced axis, so the slice becomes [start, start + T).
 */
function tableSlices(graph: Graph, one: Inferred, textInputs: readonly string[], S0: number): Map<Node, { start: number; axis: number }> {
  const fromInputs = new Set<string>(graph.inputs), fromText = new Set<string>(textInputs);
  for (const n of graph.nodes) {
    if (n.inputs.some((x) => fromInputs.has(x))) for (const o of n.outputs) if (o) fromInputs.add(o);
    if (n.inputs.some((x) => fromText.has(x))) for (const o of n.outputs) if (o) fromText.add(o);
  }
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
