/**
 * The accuracy side of the quantization report: for each GEMM the policy quantized, the relative
 * L2 error of its weight after quantize -> dequantize (the simulation the kernels must reproduce).
 * Computed when the weights are present and small enough to simulate here; the streaming weight
 * quantizer reports the same figure for full-size weights when it writes them.
 */
import { existsSync } from 'node:fs';
import type { Graph } from '../ir/graph.ts';
import { Tensor } from '../ir/tensor.ts';
import { loadConstant } from '../onnx/constants.ts';
import { dequantize, quantize } from '../ops/quant.ts';
import type { GemmDecision, PrecisionPolicy } from '../../passes/quantize/policy.ts';

/** Above this many weight elements the CPU simulation is skipped (it is O(n) but in plain JS). */
const SIMULATE_LIMIT = 20e6;

export function gemmWeightErrors(source: Graph, decisions: readonly GemmDecision[], policy: PrecisionPolicy): (GemmDecision & { weightRelL2?: number })[] {
  return decisions.map((d) => {
    if (!d.quantized) return d;
    const consts = d.weights.map((w) => source.constants.get(w));
    if (consts.some((c) => !c || (c.source.kind === 'external' && !existsSync(c.source.path)))) return d;
    const total = consts.reduce((a, c) => a + c!.shape.reduce((x, y) => x * y, 1), 0);
    if (total > SIMULATE_LIMIT) return d;
    // The fused weight is the concatenation of its parts along N; K is axis 1 of [N, K], 0 of [K, N].
    const parts = d.weights.map((w, i) => loadConstant(consts[i]!, w));
    const kAxis = d.transB ? 1 : 0;
    const k = parts[0].shape[kAxis];
    const n = parts.reduce((a, p) => a + p.shape[1 - kAxis], 0);
    const data = new Float32Array(n * k);
    let col = 0;
    for (const p of parts) {
      const pn = p.shape[1 - kAxis], values = p.toFloat32();
      for (let j = 0; j < pn; j++) for (let kk = 0; kk < k; kk++) {
        const v = d.transB ? values[j * k + kk] : values[kk * pn + j];
        data[(col + j) * k + kk] = v; // stored as [N, K]
      }
      col += pn;
    }
    const w = new Tensor('float32', [n, k], data);
    const [q, s] = quantize(w, policy.format, 1);
    const back = dequantize(q, s, 1, 'float32').data as Float32Array;
    let err = 0, ref = 0;
    for (let i = 0; i < data.length; i++) { err += (back[i] - data[i]) ** 2; ref += data[i] ** 2; }
    return { ...d, weightRelL2: Math.sqrt(err / Math.max(ref, 1e-30)) };
  });
}
