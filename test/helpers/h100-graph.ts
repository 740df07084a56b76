/**
 * A model's graph as `npx compile --target h100` plans it (compiler/compile.ts compileModel): the
 * precision policy's quantization and horizontal passes, and the deferred GEMM outputs the kernels
 * dequantize as they load them (none where the own GEMM scales its output). `cfg`: Qwen-Image as its
 * pipeline runs it (32 text tokens, both CFG passes as batch 2). For the pack tests and harness.
 */
import type { Deferred } from '../../compiler/codegen/dequant.ts';
import { deferDequant } from '../../compiler/codegen/plan.ts';
import { horizontalFor, ownGemmFor } from '../../compiler/compile.ts';
import type { Graph } from '../../compiler/ir/graph.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { rebatch } from '../../compiler/ir/rebatch.ts';
import { resequence } from '../../compiler/ir/resequence.ts';
import { specialise } from '../../compiler/ir/specialise.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy, type PrecisionPolicy } from '../../passes/quantize/policy.ts';

export function h100Graph(file: string, shapes: Record<string, number>, opts: { cfg?: boolean; attention?: PrecisionPolicy['attention'] } = {}): { graph: Graph; deferred: Map<string, Deferred> } {
  const policy = { ...defaultPolicy('fp8'), ...(opts.attention ? { attention: opts.attention } : {}) };
  const g0 = specialise(importOnnx(file).graph, shapes);
  const graph = runPipeline(inferTypes(opts.cfg ? rebatch(resequence(g0, 32), 2) : g0), { passes: pipelineFor(insertQuantize(policy, 'h100'), horizontalFor(policy, 'h100')) }).graph;
  return { graph, deferred: deferDequant(graph, ownGemmFor(policy, 'h100')) };
}
