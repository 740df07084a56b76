/**
 * A pipeline description's graphs at each of its sizes, for the CPU executor. A compiled artifact holds
 * its networks at every size it serves (compiler/pipeline-artifact.ts); a description names the exports
 * as they are, so where an export was traced at another size (the tiny VAE decoders take 16 x 16
 * latents, a 64 x 64 image has 32 x 32), its graph is re-specialised here (compiler/ir/resize.ts) and
 * written beside its data in onnxruntime's graph cache (executor/safe_softmax.ts cachedGraph), once per
 * export and size. The transformer and VAE decoder then take each size whole, as diffusers runs them.
 */
import { symbolicDims } from '../../compiler/ir/graph.ts';
import { resize } from '../../compiler/ir/resize.ts';
import { respecialisedOnnx } from '../../compiler/onnx/export.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { cachedGraph } from '../executor/safe_softmax.ts';
import type { GraphRef, PipelineManifest } from './manifest.ts';
import { formatSize } from './types.ts';

export function descriptionGraphs(m: PipelineManifest, ref: GraphRef): GraphRef {
  if (m.modules || ref.role === 'textEncoder') return ref;
  const graph = importOnnx(ref.onnx).graph;
  if (symbolicDims(graph).length) return ref; // symbolic dims take any size
  const graphs = m.sizes.map((size) => {
    const resized = resize(graph, { width: size.width / m.vaeScaleFactor, height: size.height / m.vaeScaleFactor }, `${m.path}: size ${formatSize(size)}`);
    return { onnx: resized === graph ? ref.onnx : cachedGraph(ref.onnx, `size ${formatSize(size)}`, () => respecialisedOnnx(ref.onnx, resized)), size: formatSize(size) };
  });
  const [first, ...rest] = graphs;
  return { ...ref, onnx: first.onnx, ...(rest.length ? { onnxVariants: rest, size: first.size } : {}) };
}
