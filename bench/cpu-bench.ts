/**
 * `npx bench` on a machine with no GPU: each bundled tiny transformer (models/tiny/flux2,
 * models/tiny/qwen_image) compiled by the compiler (the fp8 pipeline: FP8 GEMMs simulated exactly,
 * fused kernels as the GPU runs them) and run on the reference path, against onnxruntime-node on the
 * ONNX export itself, on the same fixture inputs, in the same process: ms per run (median) and the
 * error of each against PyTorch's output. The reference path is written for exactness, not speed:
 * the comparison says what the compiled graph computes, and how far the fp8 simulation moves it.
 */
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { runReference } from '../compiler/exec/reference.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { readNpy } from '../compiler/npy.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { ROOT } from '../compiler/paths.ts';
import { compareOutputs } from '../compiler/verify.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import type { BenchRow } from './report.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timed<T>(n: number, fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  let value = await fn(); // warm-up (and the value compared)
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    value = await fn();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), value };
}

function inputsOf(dir: string, names: readonly string[]): Record<string, Tensor> {
  return Object.fromEntries(names.map((n) => [n, readNpy(join(dir, `input_${n}.npy`))]));
}

async function runOrt(ort: typeof Ort, session: Ort.InferenceSession, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const feeds: Record<string, Ort.Tensor> = {};
  for (const [k, t] of Object.entries(inputs)) feeds[k] = new ort.Tensor(t.dtype === 'int64' ? 'int64' : 'float32', t.data as Float32Array, t.shape as number[]);
  const out = await session.run(feeds);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, new Tensor('float32', v.dims as number[], v.data as Float32Array)]));
}

export async function cpuBench(models: readonly string[], iters: number, log: (s: string) => void): Promise<BenchRow[]> {
  const ort = await import('onnxruntime-node'); // loaded here: the GPU host's bundle has no onnxruntime
  const rows: BenchRow[] = [];
  for (const model of models) {
    const dir = join(ROOT, 'models', 'tiny', model);
    const { graph } = importOnnx(join(dir, 'model.onnx'));
    const optimised = runPipeline(inferTypes(graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
    const inputs = inputsOf(dir, graph.inputs);
    const ref = { sample: readNpy(join(dir, 'output_sample.npy')) };
    const compiled = await timed(iters, () => runReference(optimised, inputs));
    const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), { executionProviders: ['cpu'] });
    const onnx = await timed(iters, () => runOrt(ort, session, inputs));
    await session.release();
    const name = `tiny ${model}`;
    rows.push({ model: name, system: 'compiled (fp8, reference path)', msPerStep: compiled.ms, relL2: compareOutputs(compiled.value, ref).relL2 });
    rows.push({ model: name, system: 'onnxruntime-node (fp32)', msPerStep: onnx.ms, relL2: compareOutputs(onnx.value, ref).relL2 });
    log(`${name}: compiled ${compiled.ms.toFixed(1)} ms, onnxruntime-node ${onnx.ms.toFixed(1)} ms per run`);
  }
  return rows;
}
