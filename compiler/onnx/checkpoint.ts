/**
 * `--weights CHECKPOINT`: a graph's weights from a safetensors checkpoint (a Hugging Face model
 * folder), in place of its ONNX external data. A structure-only export (the bundled full-size ones,
 * or any export made on the meta device) names its initializers after the PyTorch module's state
 * dict; the checkpoint names them the same, up to a prefix on either side: the export's wrapper
 * (`m.`) and the checkpoint's own (`model.`, `model.language_model.`, ...). Each initializer then
 * points at its tensor's bytes in the checkpoint's file (compiler/onnx/safetensors.ts), so the rest
 * of the compiler reads it as any external initializer: streamed, quantized, written to weights.bin.
 *
 * The prefixes are found by vote: each initializer proposes (its prefix, the key's prefix) for every
 * checkpoint key that ends with its name less up to two leading segments; the pair most initializers
 * agree on is taken, and every initializer must then be found under it, with the export's dtype and
 * shape. Buffers a module computes at construction are not in a checkpoint (derived-buffers.ts
 * computes them from the checkpoint's config.json). Keys the graph does not use (a text encoder's
 * vision tower and LM head) are counted, not an error.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fail } from '../errors.ts';
import type { Constant, Graph } from '../ir/graph.ts';
import { derivedBuffer } from './derived-buffers.ts';
import { readCheckpoint, type StoredTensor } from './safetensors.ts';

export interface CheckpointBinding extends CheckpointFacts {
  readonly graph: Graph;
}

export interface CheckpointFacts {
  readonly checkpoint: string;
  /** What was dropped from each initializer's name, and put before it to make the checkpoint's key. */
  readonly namePrefix: string;
  readonly keyPrefix: string;
  /** Initializers bound to checkpoint tensors, and those computed from the config (derived-buffers.ts). */
  readonly bound: number;
  readonly derived: readonly string[];
  /** Checkpoint tensors the graph does not read. */
  readonly unused: number;
}

const segments = (s: string) => s.split('.');

/** The (initializer prefix, key prefix) pair most initializers agree on. */
function inferPrefixes(names: readonly string[], keys: ReadonlyMap<string, StoredTensor>): { namePrefix: string; keyPrefix: string; votes: number } {
  // Every key under each of its dot-boundary suffixes of two segments or more.
  const bySuffix = new Map<string, string[]>();
  for (const key of keys.keys()) {
    const parts = segments(key);
    for (let d = 0; d < parts.length; d++) {
      if (parts.length - d < 2 && d > 0) break;
      const s = parts.slice(d).join('.');
      bySuffix.set(s, [...(bySuffix.get(s) ?? []), key]);
    }
  }
  const votes = new Map<string, number>();
  for (const name of names) {
    const parts = segments(name), seen = new Set<string>();
    for (let d = 0; d <= Math.min(2, parts.length - 1); d++) {
      if (parts.length - d < 2 && d > 0) break;
      const s = parts.slice(d).join('.');
      for (const key of bySuffix.get(s) ?? []) {
        const pair = JSON.stringify([name.slice(0, name.length - s.length), key.slice(0, key.length - s.length)]);
        if (!seen.has(pair)) votes.set(pair, (votes.get(pair) ?? 0) + 1);
        seen.add(pair);
      }
    }
  }
  let best: { namePrefix: string; keyPrefix: string; votes: number } = { namePrefix: '', keyPrefix: '', votes: 0 };
  for (const [pair, n] of votes) {
    const [namePrefix, keyPrefix] = JSON.parse(pair) as [string, string];
    const shorter = namePrefix.length + keyPrefix.length < best.namePrefix.length + best.keyPrefix.length;
    if (n > best.votes || (n === best.votes && shorter)) best = { namePrefix, keyPrefix, votes: n };
  }
  return best;
}

/** The model's config.json: beside the safetensors file, or in the checkpoint folder; undefined when there is none. */
export function readConfig(checkpoint: string): Record<string, unknown> | undefined {
  const at = resolve(checkpoint);
  const file = join(statSync(at).isDirectory() ? at : dirname(at), 'config.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(file, 'a JSON model config', `unparsable (${(e as Error).message})`);
  }
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** The graph with every external initializer read from `checkpoint` (header). */
export function bindCheckpoint(graph: Graph, checkpoint: string): CheckpointBinding {
  const tensors = readCheckpoint(checkpoint);
  const external = [...graph.constants].filter(([, c]) => c.source.kind === 'external');
  const { namePrefix, keyPrefix } = inferPrefixes(external.map(([n]) => n), tensors);
  const keyOf = (name: string) => (name.startsWith(namePrefix) ? keyPrefix + name.slice(namePrefix.length) : undefined);
  let config: Record<string, unknown> | undefined | null = null;
  const constants = new Map(graph.constants);
  const used = new Set<string>(), derived: string[] = [], missing: string[] = [];
  for (const [name, c] of external) {
    const key = keyOf(name);
    const t = key !== undefined ? tensors.get(key) : undefined;
    if (!t) {
      if (config === null) config = readConfig(checkpoint);
      const value = derivedBuffer(name, c, config, checkpoint);
      if (value) {
        constants.set(name, { dtype: c.dtype, shape: c.shape, source: { kind: 'inline', tensor: value } });
        derived.push(name);
      } else missing.push(key ?? name);
      continue;
    }
    const where = `checkpoint tensor '${t.key}' (${t.file}) for initializer '${name}'`;
    if (t.dtype !== c.dtype) fail(where, `${c.dtype} ${fmt(c.shape)}, as the export declares (convert the checkpoint to ${c.dtype})`, `${t.dtype} ${fmt(t.shape)}`);
    if (t.shape.length !== c.shape.length || t.shape.some((d, i) => d !== c.shape[i])) fail(where, `the export's shape ${fmt(c.shape)}`, fmt(t.shape));
    constants.set(name, { dtype: c.dtype, shape: c.shape, source: { kind: 'external', path: t.file, offset: t.offset, length: t.length } } satisfies Constant);
    used.add(t.key);
  }
  if (missing.length) {
    const prefixes = `initializer prefix '${namePrefix}' -> key prefix '${keyPrefix}'`;
    fail(`checkpoint ${checkpoint}`, `a tensor for every weight of ${graph.file} (${prefixes})`,
      `${missing.length} of ${external.length} missing: ${missing.slice(0, 5).map((k) => `'${k}'`).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
  }
  return {
    graph: { ...graph, constants }, checkpoint: resolve(checkpoint), namePrefix, keyPrefix,
    bound: used.size, derived, unused: tensors.size - used.size,
  };
}
