/**
 * Specialisation: binds symbolic dims of the graph inputs to numbers (`--shape img_tokens=4096`),
 * or one input axis directly (`--shape hidden_states.1=4096`), giving a graph whose inference is
 * fully static. Names that match nothing, and values contradicting a static dim, are errors.
 */
import { fail } from '../errors.ts';
import { type Dim, type Graph, type TensorType, type ValueType, symbolicDims } from './graph.ts';

export type ShapeBindings = Readonly<Record<string, number>>;

/** Parses "a=1,b=2" (the --shape flag). */
export function parseShapeFlag(text: string, flag = '--shape'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([^=]+)=(\d+)$/.exec(part);
    if (!m || Number(m[2]) <= 0) fail(flag, 'name=positive integer pairs separated by commas', `'${part}'`);
    out[m[1].trim()] = Number(m[2]);
  }
  return out;
}

export function specialise(graph: Graph, bindings: ShapeBindings, flag = '--shape'): Graph {
  const symbols = symbolicDims(graph);
  const byAxis = new Map<string, number>();
  for (const [name, value] of Object.entries(bindings)) {
    const dot = name.lastIndexOf('.');
    const input = dot > 0 ? name.slice(0, dot) : '';
    const axis = dot > 0 ? Number(name.slice(dot + 1)) : NaN;
    if (symbols.includes(name)) continue;
    const t = graph.types.get(input);
    if (graph.inputs.includes(input) && t?.kind === 'tensor' && Number.isInteger(axis) && axis >= 0 && axis < t.shape.length) {
      const current = t.shape[axis];
      if (typeof current === 'number' && current !== value) {
        fail(flag, `${name}=${current} (a static dim of input '${input}')`, `${name}=${value}`);
      }
      byAxis.set(`${input}.${axis}`, value);
      continue;
    }
    const known = symbols.length ? `a symbolic dim of the model (${symbols.join(', ')}) or INPUT.AXIS` : 'INPUT.AXIS (the model has no symbolic dims)';
    fail(flag, known, `'${name}'`);
  }
  const types = new Map<string, ValueType>(graph.types);
  for (const input of graph.inputs) {
    const t = graph.types.get(input);
    if (t?.kind !== 'tensor') continue;
    const shape: Dim[] = t.shape.map((d, axis) =>
      byAxis.get(`${input}.${axis}`) ?? (typeof d === 'string' && bindings[d] !== undefined ? bindings[d] : d));
    types.set(input, { ...t, shape } satisfies TensorType);
  }
  return { ...graph, types };
}
