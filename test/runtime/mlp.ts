/**
 * A small transformer-like MLP block without attention, for the runtime: LayerNorm -> MatMul + bias
 * (weight [K, N]) -> SiLU -> Gemm transB + bias (weight [N, K]) -> residual Add. At fp8 it has
 * LN+Quantize and SiLU+Quantize kernels, two FP8 GEMMs with biases and an element-wise add; at
 * bf16 two bf16 GEMMs; at fp32 both weight layouts in high precision.
 *
 * writeMlp(dir) writes model.onnx, input_x.npy and output_y.npy (onnxruntime's fp32 output) in
 * the tiny fixtures' layout. Sizes are multiples of 16 (FP8 GEMM alignment).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { writeNpy } from '../../compiler/npy.ts';
import { normal, rng, runOrt } from '../helpers/fixtures.ts';
import onnxProto from 'onnx-proto';
import { onnxCodeOf } from '../../compiler/ir/dtype.ts';
import { buildModel, f32 } from '../helpers/onnx-model.ts';

export const MLP = { tokens: 64, width: 256, hidden: 512 };

export function mlpModel(seed = 7): Uint8Array {
  const { width: k, hidden: n } = MLP;
  const r = rng(seed);
  const rand = (count: number, scale: number, offset = 0) => Array.from({ length: count }, () => offset + scale * normal(r));
  return buildModel({
    opset: 18,
    inputs: [{ name: 'x', dtype: 'float32', shape: [MLP.tokens, k] }],
    initializers: {
      gamma: f32([k], rand(k, 0.1, 1)), beta: f32([k], rand(k, 0.1)),
      w1: f32([k, n], rand(k * n, 1 / Math.sqrt(k))), b1: f32([n], rand(n, 0.1)),
      w2: f32([k, n], rand(k * n, 1 / Math.sqrt(n))), b2: f32([k], rand(k, 0.1)),
    },
    nodes: [
      { op: 'LayerNormalization', inputs: ['x', 'gamma', 'beta'], outputs: ['h'], attrs: { axis: -1 } },
      { op: 'MatMul', inputs: ['h', 'w1'], outputs: ['a'] },
      { op: 'Add', inputs: ['a', 'b1'], outputs: ['ab'] },
      { op: 'Sigmoid', inputs: ['ab'], outputs: ['s'] },
      { op: 'Mul', inputs: ['ab', 's'], outputs: ['g'] },
      { op: 'Gemm', inputs: ['g', 'w2', 'b2'], outputs: ['o'], attrs: { transB: 1 } },
      { op: 'Add', inputs: ['o', 'x'], outputs: ['y'] },
    ],
    outputs: ['y'],
  });
}

/** Writes the model, a seeded input and onnxruntime's output into `dir`; returns the model path. */
export async function writeMlp(dir: string, seed = 7): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const model = join(dir, 'model.onnx');
  writeFileSync(model, mlpModel(seed));
  const r = rng(seed + 100);
  const x = Tensor.fromNumbers('float32', [MLP.tokens, MLP.width], Array.from({ length: MLP.tokens * MLP.width }, () => normal(r)));
  writeNpy(join(dir, 'input_x.npy'), x);
  const { y } = await runOrt(model, { x });
  writeNpy(join(dir, 'output_y.npy'), y);
  return model;
}

/**
 * A structure-only bf16 GEMM, y[M, N] = x[M, K] · W[K, N], its weight declared as external data
 * that does not exist (like the full-size exports): for timing a GEMM with synthetic weights.
 */
export function gemmOnlyModel(m: number, k: number, n: number): Uint8Array {
  const { onnx } = onnxProto;
  const info = (name: string, shape: number[]) => ({ name, type: { tensorType: { elemType: onnxCodeOf('bfloat16'), shape: { dim: shape.map((d) => ({ dimValue: d })) } } } });
  const weight = {
    name: 'w', dataType: onnxCodeOf('bfloat16'), dims: [k, n], dataLocation: 1,
    externalData: [{ key: 'location', value: 'absent.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: String(2 * k * n) }],
  };
  return onnx.ModelProto.encode({
    irVersion: 8, producerName: 'runtime-gemm', opsetImport: [{ domain: '', version: 18 }],
    graph: { name: 'gemm', input: [info('x', [m, k])], output: [{ name: 'y' }], initializer: [weight], node: [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'], name: 'matmul' }] },
  }).finish();
}
