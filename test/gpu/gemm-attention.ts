/**
 * GEMM attention cases (passes/lower-attention.ts, head dims the flash kernels do not take): a
 * small ONNX model shaped like the VAE decoders' mid-block attention, one head, q/k/v read as
 * Split parts of one [1, S, 3D] projection (the strided views of Flux.2's fused QKV):
 *
 *   qkv f32 [1, S, 3D] -> Cast bf16 -> Split(-1) -> Reshape [1, S, 1, D] -> Transpose (bhsd)
 *   -> MatMul(q, kᵀ) -> Mul(1/sqrt(D)) -> Softmax -> MatMul(·, v) -> Cast f32 -> y [1, 1, S, D]
 *
 * gemmAttentionModel(s, d) builds it; `npx tsx test/gpu/gemm-attention.ts DIR S:D...` writes, per
 * case, DIR/s<S>-d<D>/{model.onnx, input_qkv.npy, output_y.npy}, the output being the CPU
 * reference executor's on the graph fused but not lowered (FusedAttention computes in float64 on
 * the bf16 inputs), for run-cli --inputs/--reference on the GPU host.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runReference } from '../../compiler/exec/reference.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { writeNpy } from '../../compiler/npy.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { lowerAttention } from '../../passes/lower-attention.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy } from '../../passes/quantize/policy.ts';
import { normal, rng } from '../helpers/fixtures.ts';
import { buildModel, f32, i64 } from '../helpers/onnx-model.ts';

const BF16 = 16;

export function gemmAttentionModel(s: number, d: number): Uint8Array {
  return buildModel({
    opset: 18,
    inputs: [{ name: 'qkv', dtype: 'float32', shape: [1, s, 3 * d] }],
    initializers: { sizes: i64([3], [d, d, d]), shape: i64([4], [1, s, 1, d]), scale: f32([], [1 / Math.sqrt(d)]) },
    nodes: [
      { op: 'Cast', inputs: ['qkv'], outputs: ['x'], attrs: { to: BF16 } },
      { op: 'Cast', inputs: ['scale'], outputs: ['scale_bf16'], attrs: { to: BF16 } },
      { op: 'Split', inputs: ['x', 'sizes'], outputs: ['q0', 'k0', 'v0'], attrs: { axis: -1 } },
      { op: 'Reshape', inputs: ['q0', 'shape'], outputs: ['q1'] },
      { op: 'Reshape', inputs: ['k0', 'shape'], outputs: ['k1'] },
      { op: 'Reshape', inputs: ['v0', 'shape'], outputs: ['v1'] },
      { op: 'Transpose', inputs: ['q1'], outputs: ['q'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'Transpose', inputs: ['k1'], outputs: ['kt'], attrs: { perm: [0, 2, 3, 1] } },
      { op: 'Transpose', inputs: ['v1'], outputs: ['v'], attrs: { perm: [0, 2, 1, 3] } },
      { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['scores'] },
      { op: 'Mul', inputs: ['scores', 'scale_bf16'], outputs: ['scaled'] },
      { op: 'Softmax', inputs: ['scaled'], outputs: ['probs'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['probs', 'v'], outputs: ['o'] },
      { op: 'Cast', inputs: ['o'], outputs: ['y'], attrs: { to: 1 } },
    ],
    outputs: ['y'],
  });
}

/** Seeded qkv: N(0, amp²) (amp 2: scores of about 4 standard deviations, a peaked softmax). */
export function gemmAttentionInput(s: number, d: number, seed = 5, amp = 2): Tensor {
  const r = rng(seed);
  const t = Tensor.zeros('float32', [1, s, 3 * d]);
  for (let i = 0; i < t.size; i++) t.set(i, amp * normal(r));
  return t;
}

/** The fp8 pipeline (the VAEs' bf16 policy) without lower-attention, and with it. */
export function gemmAttentionGraphs(file: string) {
  const passes = pipelineFor(insertQuantize(defaultPolicy('fp8')));
  const before = runPipeline(inferTypes(importOnnx(file).graph), { passes: passes.filter((p) => p !== lowerAttention) });
  const after = runPipeline(before, { passes: [lowerAttention] });
  return { before: before.graph, after: after.graph };
}

/** Writes one case folder: the model, its input and the reference executor's output on the unlowered graph. */
export function writeGemmAttentionCase(dir: string, s: number, d: number): void {
  mkdirSync(dir, { recursive: true });
  const model = join(dir, 'model.onnx');
  writeFileSync(model, gemmAttentionModel(s, d));
  const qkv = gemmAttentionInput(s, d);
  writeNpy(join(dir, 'input_qkv.npy'), qkv);
  const { before } = gemmAttentionGraphs(model);
  writeNpy(join(dir, 'output_y.npy'), runReference(before, { qkv }).y);
}

if (process.argv[1]?.endsWith('gemm-attention.ts')) {
  const [dir, ...cases] = process.argv.slice(2);
  for (const c of cases) {
    const [s, d] = c.split(':').map(Number);
    writeGemmAttentionCase(join(dir, `s${s}-d${d}`), s, d);
    console.log(`${dir}/s${s}-d${d}`);
  }
}
