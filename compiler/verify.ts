/**
 * --verify DIR: runs the optimised graph on the CPU reference executor with DIR/input_<name>.npy
 * and compares every output with DIR/output_<name>.npy: relative L2 error ‖out − ref‖₂ / ‖ref‖₂
 * and cosine similarity, each over all outputs flattened together.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from './errors.ts';
import { runReference } from './exec/reference.ts';
import { type Graph, formatType } from './ir/graph.ts';
import type { Tensor } from './ir/tensor.ts';
import { readNpy } from './npy.ts';

export interface VerifyResult {
  relL2: number;
  cosine: number;
  tolerance: number;
  minCosine: number;
  passed: boolean;
}

/**
 * Accuracy bar per precision, against the fp32 PyTorch outputs: exact fp32 matches to ~1e-6 (see
 * the fixtures' README); the quantized bars are issue 4's (relative L2, and cosine).
 */
export const VERIFY_TOLERANCE: Record<string, { relL2: number; cosine: number }> = {
  fp32: { relL2: 1e-5, cosine: 0.99999 }, bf16: { relL2: 1e-2, cosine: 0.9999 },
  fp8: { relL2: 0.08, cosine: 0.995 }, nvfp4: { relL2: 0.25, cosine: 0.97 },
};

export function readVerifyInputs(graph: Graph, dir: string): Record<string, Tensor> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) fail('--verify', 'a folder of input_<name>.npy / output_<name>.npy files', `'${dir}' is not a folder`);
  const inputs: Record<string, Tensor> = {};
  for (const name of graph.inputs) {
    const file = join(dir, `input_${name}.npy`);
    if (!existsSync(file)) fail(`--verify ${dir}`, `input_${name}.npy for graph input '${name}' ${formatType(graph.types.get(name)!)}`, 'no such file');
    inputs[name] = readNpy(file);
  }
  return inputs;
}

export function compareOutputs(outputs: Record<string, Tensor>, refs: Record<string, Tensor>): { relL2: number; cosine: number } {
  let diff = 0, ref = 0, dotp = 0, self = 0;
  for (const [name, r] of Object.entries(refs)) {
    const y = outputs[name];
    for (let i = 0; i < r.size; i++) {
      const a = y.get(i), b = r.get(i);
      diff += (a - b) ** 2;
      ref += b * b;
      dotp += a * b;
      self += a * a;
    }
  }
  return { relL2: Math.sqrt(diff) / Math.max(Math.sqrt(ref), 1e-30), cosine: dotp / Math.max(Math.sqrt(self * ref), 1e-30) };
}

export function verifyGraph(graph: Graph, dir: string, bar: { relL2: number; cosine: number }): VerifyResult {
  const inputs = readVerifyInputs(graph, dir);
  const refs: Record<string, Tensor> = {};
  for (const name of graph.outputs) {
    const file = join(dir, `output_${name}.npy`);
    if (!existsSync(file)) {
      const present = readdirSync(dir).filter((f) => f.startsWith('output_'));
      fail(`--verify ${dir}`, `output_${name}.npy for graph output '${name}'`, present.length ? present.join(', ') : 'no output_*.npy');
    }
    refs[name] = readNpy(file);
  }
  const outputs = runReference(graph, inputs);
  for (const [name, r] of Object.entries(refs)) {
    const y = outputs[name];
    if (y.size !== r.size) fail(`--verify ${dir}`, `output_${name}.npy of shape [${y.shape}]`, `[${r.shape}]`);
  }
  const { relL2, cosine } = compareOutputs(outputs, refs);
  return { relL2, cosine, tolerance: bar.relL2, minCosine: bar.cosine, passed: relL2 <= bar.relL2 && cosine >= bar.cosine };
}
