/**
 * The accuracy side of the quantization report: for each GEMM the policy quantized, the relative
 * L2 error of its weight after quantize -> dequantize (the simulation the kernels must reproduce),
 * as weights-file.ts measured it while writing that weight (the streaming quantizer for stored and
 * fused weights, the in-memory one otherwise). A GEMM's entry is the one rebuilt from the same
 * initializers (its provenance); without weights (a structure-only export) there is no figure.
 */
import type { GemmDecision } from '../../passes/quantize/policy.ts';
import type { WeightEntry } from '../weights-file.ts';

export type GemmReport = GemmDecision & { weightRelL2?: number };

export function withWeightErrors(decisions: readonly GemmDecision[], entries: readonly WeightEntry[]): GemmReport[] {
  const byInitializers = new Map<string, number>();
  for (const t of entries) {
    if (t.kind === 'raw' || t.relL2 === undefined || !t.sources?.length) continue;
    byInitializers.set(t.sources.map((s) => s.initializer).sort().join('\n'), t.relL2);
  }
  return decisions.map((d) => {
    const relL2 = d.quantized ? byInitializers.get([...d.weights].sort().join('\n')) : undefined;
    return relL2 === undefined ? d : { ...d, weightRelL2: relL2 };
  });
}
