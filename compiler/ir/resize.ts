/**
 * Image-size re-specialisation (`npx compile --size WxH`, and a pipeline's `sizes`): a graph exported
 * at one image size becomes the same function at another, over respecialise.ts.
 *
 * The size arrives in latent pixels (the image's size over the VAE's scale factor):
 *   - a VAE decoder (input `latents`, [B, C, H, W] or [B, C, T, H, W]) takes it on its last two axes;
 *   - a transformer (input `hidden_states`, [B, tokens, C]) takes the grid of 2 x 2 latent patches,
 *     rows x columns, on its token axis, and so does `img_ids` (Flux.2's positions; the pipeline
 *     computes them for the size). The export's grid is taken as square (both families export
 *     1024 x 1024); the token axis may be split only along it.
 * Qwen-Image computes its RoPE tables inside the graph from the traced grid (diffusers' QwenEmbedRope,
 * scale_rope): the image table is rebuilt for the new grid from the export's own pos_freqs / neg_freqs
 * (row r of [neg_freqs; pos_freqs] is position r - R: a grid side of n reads rows R - ceil(n/2) ..
 * R + floor(n/2) - 1, the frame reads row R), and the text table's slice of pos_freqs starts at
 * max(rows, columns) / 2 instead of the export's. The tables are found by what they are — the first
 * value of [tokens, columns] computed from the frequency tables alone, and the one Slice of pos_freqs
 * that starts at the export's max(h, w) / 2 — and anything else is refused. Proof per graph:
 * test/resize.test.ts runs the tiny networks at 80 x 48 against PyTorch's modules at that size.
 */
import { fail } from '../errors.ts';
import type { Graph, Node } from './graph.ts';
import { inferTypes } from './infer.ts';
import { type Grid, type RewriteContext, respecialise, shapeOf } from './respecialise.ts';
import { Tensor } from './tensor.ts';

/** An image's size in latent pixels: the image's over the VAE's scale factor. */
export interface LatentSize { readonly height: number; readonly width: number }

export function resize(graph: Graph, latent: LatentSize, flag: string): Graph {
  const latents = shapeOf(graph.types.get('latents'));
  if (graph.inputs.includes('latents') && latents && latents.length >= 4) {
    const [h, w] = latents.slice(-2);
    if (h === latent.height && w === latent.width) return graph;
    const axes = new Map([[latents.length - 2, latent.height], [latents.length - 1, latent.width]]);
    return respecialise(graph, { flag, inputs: new Map([['latents', axes]]) });
  }
  const hidden = shapeOf(graph.types.get('hidden_states'));
  if (!graph.inputs.includes('hidden_states') || !hidden || hidden.length !== 3) {
    return fail(flag, "a VAE decoder (input 'latents' [B, C, H, W]) or a transformer (input 'hidden_states' [B, tokens, C]) of static shapes", `inputs ${graph.inputs.join(', ')}`);
  }
  if (latent.height % 2 || latent.width % 2) fail(flag, 'a latent size of whole 2 x 2 patches', `${latent.width} x ${latent.height} latent pixels`);
  const rows = latent.height / 2, cols = latent.width / 2, tokens = rows * cols;
  const S0 = hidden[1], side = Math.round(Math.sqrt(S0));
  if (side * side !== S0) fail(flag, 'an export traced at a square token grid', `${S0} image tokens`);
  if (tokens === S0 && rows === side) return graph;
  const inputs = new Map([['hidden_states', new Map([[1, tokens]])]]);
  const ids = shapeOf(graph.types.get('img_ids'));
  if (graph.inputs.includes('img_ids') && ids) {
    const axis = ids.indexOf(S0);
    if (axis < 0) fail(flag, `img_ids holding ${S0} positions on one axis`, `[${ids}]`);
    inputs.set('img_ids', new Map([[axis, tokens]]));
  }
  const grid: Grid = { old: [side, side], now: [rows, cols] };
  return respecialise(graph, { flag, inputs, grids: [grid], rewrite: qwenRopeTables(graph, grid, flag) });
}

/** QwenEmbedRope's image and text tables for the new grid (file header); undefined for a graph without them. */
function qwenRopeTables(graph: Graph, grid: Grid, flag: string): ((node: Node, index: number, ctx: RewriteContext) => Node[] | undefined) | undefined {
  const names = [...graph.constants.keys()];
  const pos = names.find((n) => /pos_embed\.pos_freqs$/.test(n)), neg = names.find((n) => /pos_embed\.neg_freqs$/.test(n));
  if (!pos || !neg) return undefined;
  const one = inferTypes(graph);
  const table = shapeOf(one.graph.types.get(pos))!;
  const [R, C] = table;
  const where = (what: string) => `${graph.file}: ${what} (${flag})`;
  // The columns of each rope axis: the split of pos_freqs the graph makes.
  const split = graph.nodes.find((n) => (n.op === 'Split' || n.op === 'SplitToSequence') && n.inputs[0] === pos && Number(n.attrs.axis ?? 0) === 1);
  const sizes = split && one.known.get(split.inputs[1])?.toNumbers();
  if (!sizes || sizes.length !== 3 || sizes.reduce((a, b) => a + b, 0) !== C) fail(where(`'${pos}'`), 'a split of the frequency table into (frame, height, width) columns', sizes ? `[${sizes}]` : 'none');
  const S0 = grid.old[0] * grid.old[1];
  const fromInputs = new Set(graph.inputs), fromFreqs = new Set([pos, neg]);
  let image: Node | undefined, text: Node | undefined;
  for (const n of graph.nodes) {
    if (n.inputs.some((x) => fromInputs.has(x))) { for (const o of n.outputs) if (o) fromInputs.add(o); continue; }
    if (!n.inputs.some((x) => fromFreqs.has(x))) continue;
    for (const o of n.outputs) if (o) fromFreqs.add(o);
    const s = shapeOf(one.graph.types.get(n.outputs[0]));
    if (!image && s && s.length === 2 && s[0] === S0 && s[1] === C) image = n;
    if (n.op === 'Slice' && n.inputs[0] === pos && !text) text = n;
  }
  if (!image) return fail(where(`'${pos}'`), `an image RoPE table of [${S0}, ${C}] computed from the frequency tables`, 'none');
  const offset = (g: readonly number[]) => Math.max(Math.floor(g[0] / 2), Math.floor(g[1] / 2));
  const start = text && one.known.get(text.inputs[1])?.toNumbers();
  const end = text && one.known.get(text.inputs[2])?.toNumbers();
  const axes = text?.inputs[3] ? one.known.get(text.inputs[3])?.toNumbers() : [0];
  if (!text || !start || !end || start.length !== 1 || axes?.[0] !== 0 || start[0] !== offset(grid.old)) {
    return fail(where(`'${pos}'`), `the text RoPE table as a slice of it from row max(h, w) / 2 = ${offset(grid.old)}`, text ? `a slice from [${start}]` : 'none');
  }
  const [rows, cols] = grid.now;
  const half = (n: number) => Math.ceil(n / 2);
  if (half(Math.max(rows, cols)) > R || offset(grid.now) + (end[0] - start[0]) > R) fail(where(`'${pos}'`), `a grid that ${R} RoPE positions hold`, `${rows} x ${cols} tokens`);

  return (node, _index, ctx) => {
    if (node === text) {
      const at = offset(grid.now), length = Math.min(end[0], R) - start[0];
      const bound = (base: string, v: number) => ctx.constant(base, Tensor.fromNumbers('int64', [1], [v]));
      return [{ ...node, inputs: [node.inputs[0], bound(node.inputs[1], at), bound(node.inputs[2], at + length), ...node.inputs.slice(3)] }];
    }
    if (node !== image) return undefined;
    const out = node.outputs[0], t = ctx.types.get(pos)!;
    if (t.kind !== 'tensor' || one.graph.types.get(out)?.dtype !== t.dtype) fail(ctx.where, `an image table of the frequency tables' dtype`, `${one.graph.types.get(out)?.dtype}`);
    const made: Node[] = [];
    let k = 0;
    const add = (op: string, inputs: string[], attrs: Node['attrs'], output = `${out}/size_${k++}`) => { made.push({ op, domain: "", inputs, outputs: [output], attrs, name: `${node.name}/${output}` }); return output; };
    const ints = (values: number[], shape = [values.length]) => ctx.constant(`${out}/size`, Tensor.fromNumbers('int64', shape, values));
    const both = add('Concat', [neg, pos], { axis: 0 }); // row r: position r - R
    const index = (pick: (y: number, x: number) => number) => ints(Array.from({ length: rows * cols }, (_, t) => pick(Math.floor(t / cols), t % cols)));
    const rowsOf = [index(() => R), index((y) => R - half(rows) + y), index((_, x) => R - half(cols) + x)];
    let c0 = 0;
    const parts = sizes.map((d, a) => {
      const columns = add('Slice', [both, ints([c0]), ints([c0 + d]), ints([1])], {});
      c0 += d;
      return add('Gather', [columns, rowsOf[a]], { axis: 0 });
    });
    add('Concat', parts, { axis: 1 }, out);
    return made;
  };
}
