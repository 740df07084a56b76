/**
 * Restores eager PyTorch's fully-masked-row attention in ONNX exports before onnxruntime runs them.
 *
 * torch.onnx decomposes scaled_dot_product_attention with a boolean mask into
 *
 *     bias  = Where(mask, 0, float32.min)          probs = Softmax(q·kᵀ + bias)
 *     out   = Where(IsNaN(probs), 0, probs) · v     (PyTorch's "safe softmax" guard)
 *
 * For a query row whose keys are all masked (a left-padded prompt's pad rows in the Mistral text
 * encoder) every score is float32.min, so Softmax returns 1/n everywhere and the guard never fires:
 * the row averages all values, future ones included. Eager PyTorch (what diffusers runs) gives
 * such a row a zero attention output, and Flux.2 feeds those pad rows to its transformer unmasked.
 * Replacing float32.min by -inf in that bias makes the fully-masked rows NaN, which the guard the
 * exporter emitted turns into 0; every other row is unchanged (exp(min - max) and exp(-inf) are
 * both exactly 0 in float32). Only Softmaxes behind such a guard are rewritten.
 *
 * `patchSafeSoftmax(path)` returns the path to load: the original when nothing matches, else a
 * rewritten model.onnx in a cache folder keyed by the original's bytes and its external-data files'
 * identity (inode, size, mtime). onnxruntime refuses external data outside the model's folder, even
 * through a symlink, so those files are hard-linked there (copied across file systems).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto as unknown as { onnx: any };
const FLOAT32_MIN = -3.4028234663852886e38;
const NEG_INF = 'dc_safe_softmax_neg_inf';

type Node = { opType: string; input: string[]; output: string[] };

function scalarValue(init: any): number | undefined {
  if (init.dataType !== 1 || init.dims.length > 1 || (init.dims.length === 1 && Number(init.dims[0]) !== 1)) return undefined;
  if (init.floatData?.length === 1) return init.floatData[0];
  if (init.rawData?.length === 4) return new DataView(init.rawData.buffer, init.rawData.byteOffset, 4).getFloat32(0, true);
  return undefined;
}

/** Rewrites the model in place; returns how many attention Softmaxes now give fully-masked rows zero. */
export function rewriteSafeSoftmax(model: any): number {
  const nodes: Node[] = model.graph.node;
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of nodes) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const inits = new Map<string, any>(model.graph.initializer.map((i: any) => [i.name, i]));
  let changed = 0;
  for (const sm of nodes.filter((n) => n.opType === 'Softmax')) {
    const out = sm.output[0];
    const guard = (consumers.get(out) ?? []).find((n) => n.opType === 'IsNaN');
    const guarded = guard && (consumers.get(out) ?? []).some((n) => n.opType === 'Where' && n.input[0] === guard.output[0] && n.input[2] === out);
    const add = producer.get(sm.input[0]);
    if (!guarded || add?.opType !== 'Add') continue;
    for (const term of add.input) {
      const where = producer.get(term);
      if (where?.opType !== 'Where') continue;
      if (where.input[2] === NEG_INF) { changed++; continue; } // a bias shared with an earlier layer
      const fill = inits.get(where.input[2]);
      if (!fill || scalarValue(fill) !== Math.fround(FLOAT32_MIN)) continue;
      where.input[2] = NEG_INF;
      changed++;
    }
  }
  if (changed) {
    // Drop the float32.min constants nothing reads any more (onnxruntime warns about each).
    const used = new Set(nodes.flatMap((n) => n.input));
    model.graph.initializer = model.graph.initializer.filter((i: any) => used.has(i.name) || model.graph.input.some((v: any) => v.name === i.name));
  }
  if (changed && !inits.has(NEG_INF)) {
    const raw = new Uint8Array(4);
    new DataView(raw.buffer).setFloat32(0, -Infinity, true);
    model.graph.initializer.push(onnx.TensorProto.create({ name: NEG_INF, dataType: 1, dims: [], rawData: raw }));
  }
  return changed;
}

export interface Patched { path: string; rewritten: number }

export function patchSafeSoftmax(modelPath: string, cacheRoot = join(tmpdir(), 'dc-ort-graphs')): Patched {
  const bytes = readFileSync(modelPath);
  const model = onnx.ModelProto.decode(bytes);
  const rewritten = rewriteSafeSoftmax(model);
  if (!rewritten) return { path: modelPath, rewritten: 0 };
  return { path: cachedGraph(modelPath, 'safe-softmax', () => onnx.ModelProto.encode(model).finish(), cacheRoot), rewritten };
}

/**
 * A rewritten copy of the graph at `modelPath` (`encode()`'s bytes) as model.onnx in a cache folder keyed by the
 * original's bytes, `salt` (what the rewrite is) and its external-data files' identity (inode, size, mtime), the
 * data hard-linked beside it (copied across file systems): onnxruntime refuses external data outside the model's
 * folder, even through a symlink. An existing entry is reused; the path to load is returned.
 */
export function cachedGraph(modelPath: string, salt: string, encode: () => Uint8Array, cacheRoot = join(tmpdir(), 'dc-ort-graphs')): string {
  const bytes = readFileSync(modelPath);
  const model = onnx.ModelProto.decode(bytes);
  const locations = new Set<string>();
  for (const init of model.graph.initializer) {
    const loc = (init.externalData ?? []).find((e: { key: string }) => e.key === 'location');
    if (loc) locations.add(loc.value);
  }
  const key = createHash('sha256').update(bytes).update(`\0${salt}`);
  for (const loc of [...locations].sort()) {
    const st = statSync(resolve(dirname(modelPath), loc));
    key.update(`\0${loc}\0${st.ino}\0${st.size}\0${st.mtimeMs}`);
  }
  const dir = join(cacheRoot, key.digest('hex').slice(0, 20));
  const out = join(dir, 'model.onnx');
  if (existsSync(out)) return out;
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  for (const loc of locations) {
    const dest = join(partial, loc);
    mkdirSync(dirname(dest), { recursive: true });
    try {
      linkSync(resolve(dirname(modelPath), loc), dest);
    } catch {
      copyFileSync(resolve(dirname(modelPath), loc), dest);
    }
  }
  writeFileSync(join(partial, 'model.onnx'), encode());
  try {
    renameSync(partial, dir);
  } catch (e) {
    rmSync(partial, { recursive: true, force: true });
    if (!existsSync(out)) throw e; // another process won the race with the same content
  }
  return out;
}
