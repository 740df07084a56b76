/**
 * Shared by the attention tests (test/codegen-attention.test.ts, test/attention-fp8-pv.test.ts,
 * test/attention-int8.test.ts, test/attention-int8-pv.test.ts): the dc ops of a graph by name, an attention's lowered
 * nodes, relative L2 error, seeded tensors for
 * a value's type (the generator of test/gpu/attention-data.ts, so CPU and GPU cases draw the same
 * inputs), values computed from given roots through the nodes in between (reference executor), the
 * GPU reference's whole output in the executor's layout, and a build of rendered kernels for both
 * targets that must not spill.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildKernels } from '../../compiler/build/index.ts';
import type { AttentionDescriptor } from '../../compiler/codegen/attention.ts';
import { type RenderedKernel, renderUnit } from '../../compiler/codegen/render.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { loadConstant } from '../../compiler/onnx/constants.ts';
import { roundTo } from '../../compiler/ops/elementwise.ts';
import { lookupOp } from '../../compiler/ops/registry.ts';
import { uniform } from '../gpu/attention-data.ts';
import type { AttentionReference } from '../gpu/attention-reference.ts';

export const ops = (g: Graph, op: string) => g.nodes.filter((n) => n.domain === 'dc' && n.op === op);

/** What lower-attention made of FusedAttention `fused` in `after`: its pack, its V quantization (8-bit P·V; else undefined), its packed attention. */
export function loweredOf(after: Graph, fused: Node): { pack: Node; vq: Node | undefined; attn: Node } {
  const pack = ops(after, 'AttentionPack').find((n) => n.outputs[0].startsWith(`${fused.outputs[0]}/`))!;
  const vq = ops(after, 'AttentionQuantizeV').find((n) => n.inputs[0] === pack.outputs[2]);
  const attn = ops(after, 'PackedAttention').find((n) => n.outputs[0] === fused.outputs[0])!;
  return { pack, vq, attn };
}

/** Seeded values for a tensor type (float inputs in [-amp, amp), rounded to the dtype; bool: mostly true). */
export function random(graph: Graph, v: string, seed: number, amp = 1): Tensor {
  const t = graph.types.get(v) as unknown as { dtype: Tensor['dtype']; shape: number[] };
  const x = Tensor.zeros(t.dtype, t.shape);
  for (let i = 0; i < x.size; i++) x.set(i, t.dtype === 'bool' ? Number(uniform(i, seed) > -0.6) : roundTo(t.dtype, uniform(i, seed) * amp));
  return x;
}

/** Values of `v` computed from the roots through the view chain (reference executor). */
export function throughViews(graph: Graph, v: string, roots: Map<string, Tensor>): Tensor {
  const known = roots.get(v);
  if (known) return known;
  if (graph.constants.has(v)) return loadConstant(graph.constants.get(v)!, v);
  const node = graph.nodes.find((n) => n.outputs.includes(v))!;
  const outs = lookupOp(node)!.exec(node.inputs.map((x) => (x ? throughViews(graph, x, roots) : undefined)), node) as Tensor[];
  return outs[node.outputs.indexOf(v)];
}

/** Every output row of the GPU reference (attention-reference.ts), laid out as the executor's output (bshd or bhsd). */
export function referenceOutput(reference: AttentionReference, ad: AttentionDescriptor, length: number): Float32Array {
  const got = new Float32Array(length);
  for (let b = 0; b < ad.batch; b++) for (let h = 0; h < ad.heads; h++) for (let s = 0; s < ad.seqQ; s++) {
    const base = ad.outLayout === 'bshd' ? ((b * ad.seqQ + s) * ad.heads + h) * ad.headDim : ((b * ad.heads + h) * ad.seqQ + s) * ad.headDim;
    reference.output(b, h, s).forEach((v, i) => (got[base + i] = v));
  }
  return got;
}

/** Builds the kernels as one hot unit for h100 and b200 (a fresh cache): each must be there, with no spill. */
export async function expectBuildsWithoutSpills(kernels: Omit<RenderedKernel, 'args'>[], name: string): Promise<void> {
  for (const target of ['h100', 'b200'] as const) {
    const report = await buildKernels([{ name: `${name}_${target}`, source: renderUnit(kernels), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    for (const x of kernels) {
      const f = report.units[0].functions.find((fn) => fn.name === x.name);
      expect(f, `${target} ${x.name}`).toBeDefined();
      expect([f!.spillStoreBytes, f!.spillLoadBytes], `${target} ${x.name}`).toEqual([0, 0]);
    }
  }
}
