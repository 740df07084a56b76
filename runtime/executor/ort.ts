/**
 * CPU executor over onnxruntime-node. Sessions are created from the model *path* (not bytes) so
 * ONNX external data (model.onnx.data beside it) is found and memory-mapped by ORT itself.
 * Tensors cross the boundary without copies where the storage types agree (float32 in
 * Float32Array, int64 in BigInt64Array). ORT's CPU kernels give the same bytes for the same inputs
 * on the same machine and thread count, which the pipelines' seed determinism relies on.
 * Before loading, exported attention whose fully-masked rows would average every value gets eager
 * PyTorch's zero rows back (safe_softmax.ts); the description says when a graph was rewritten.
 */
import * as ort from 'onnxruntime-node';
import type { DType } from '../../compiler/ir/dtype.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { isBits, valuesOf } from './bf16.ts';
import { patchSafeSoftmax } from './safe_softmax.ts';
import type { GraphRef } from '../pipeline/manifest.ts';
import { type Executor, type ValueInfo, byInputShapes, loadAll } from './types.ts';

const ORT_TYPES: Partial<Record<DType, ort.Tensor.Type>> = {
  float32: 'float32', int64: 'int64', int32: 'int32', bool: 'bool', uint8: 'uint8', float64: 'float64',
};

function info(m: ort.InferenceSession.ValueMetadata): ValueInfo {
  if (!m.isTensor) return { name: m.name, dtype: 'float32', shape: [] };
  return { name: m.name, dtype: m.type as DType, shape: m.shape.map((d) => (typeof d === 'number' ? d : String(d))) };
}

export class OrtExecutor implements Executor {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly description: string,
    readonly inputs: readonly ValueInfo[],
    readonly outputs: readonly ValueInfo[],
  ) {}

  static async load(modelPath: string, options: ort.InferenceSession.SessionOptions = {}): Promise<OrtExecutor> {
    let session: ort.InferenceSession;
    let rewritten = 0;
    try {
      const patched = patchSafeSoftmax(modelPath);
      rewritten = patched.rewritten;
      session = await ort.InferenceSession.create(patched.path, { executionProviders: ['cpu'], ...options });
    } catch (e) {
      throw new Error(`${modelPath}: onnxruntime could not load the graph (${(e as Error).message})`);
    }
    const note = rewritten ? ` (${rewritten} attention masks: fully-masked rows give zero, as eager PyTorch)` : '';
    return new OrtExecutor(session, `cpu (onnxruntime-node) ${modelPath}${note}`,
      session.inputMetadata.map(info), session.outputMetadata.map(info));
  }

  async run(inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, given] of Object.entries(inputs)) {
      // A GPU module's bfloat16 output kept as bits (./bf16.ts) feeds a float32 graph input as its values.
      const t = isBits(given) ? new Tensor('float32', given.shape, valuesOf(given)) : given;
      const type = ORT_TYPES[t.dtype];
      if (!type) throw new Error(`${this.description}: input '${name}' has dtype ${t.dtype}, which the CPU executor does not feed`);
      feeds[name] = new ort.Tensor(type, t.data as Float32Array, t.shape as number[]);
    }
    const results = await this.session.run(feeds);
    const out: Record<string, Tensor> = {};
    for (const [name, v] of Object.entries(results)) {
      out[name] = new Tensor(v.type as DType, v.dims as number[], v.data as Float32Array);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The graph, and where an artifact has it at further sizes (GraphRef.onnxVariants) those too, each run going to the one of its shapes (of its size: forSize). */
export const cpuExecutorFactory = async (graph: GraphRef): Promise<Executor> => {
  graph.verify?.(); // an artifact's graph files against their hashes, before onnxruntime reads them
  if (!graph.onnxVariants?.length) return OrtExecutor.load(graph.onnx);
  const graphs = [{ onnx: graph.onnx, size: graph.size }, ...graph.onnxVariants];
  return byInputShapes(await loadAll((g) => OrtExecutor.load(g.onnx), graphs.map((g) => ({ role: graph.role, onnx: g.onnx }))), graphs.map((g) => g.size));
};
