/**
 * NVFP4 activation quantization kernels (the b200 path): the tiny Flux.2 transformer compiled with
 * the nvfp4 policy has a kernel for every activation Quantize (an amax launch then an encode launch
 * over the same x, q, scale), the scale buffer's tail (global scale, partial maxima) fits in the
 * buffer the memory plan gives, and the kernels build for sm_100a and sm_90a without spills. Their
 * numerics are checked on the H100 through the sm_90a build (test/gpu/cases.ts, exact codes).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { nvfp4ScaleLayout, renderNvfp4Quantize } from '../compiler/codegen/nvfp4.ts';
import { kernelPlan } from '../compiler/codegen/plan.ts';
import { renderUnit } from '../compiler/codegen/render.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';

const graph = runPipeline(inferTypes(importOnnx(join(tinyDir('flux2'), 'model.onnx')).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('nvfp4'))) }).graph;
const memory = planMemory(graph);
const plan = kernelPlan(graph, memory);

describe('NVFP4 activation quantization kernels', () => {
  const quantizes = graph.nodes.filter((n) => n.op === 'Quantize' && n.attrs.format === 'nvfp4' && plan.launches.some((l) => l.node === n.outputs[0]));

  it('gives every activation Quantize an amax launch then an encode launch over (x, q, scale)', () => {
    expect(quantizes.length).toBeGreaterThan(10);
    expect(plan.pending['dc.Quantize']).toBeUndefined();
    for (const q of quantizes) {
      const launches = plan.launches.filter((l) => l.node === q.outputs[0]);
      expect(launches.map((l) => (l.kind === 'kernel' ? l.kernel.replace(/^q4_[0-9a-f]+/, '') : l.kind))).toEqual(['_amax', '_encode']);
      for (const l of launches) expect(l.args.map((a) => a.value)).toEqual([q.inputs[0], ...q.outputs]);
    }
  });

  it('keeps the global scale and the partial maxima inside the scale buffer the memory plan gives', () => {
    for (const elements of [192, 4096, 32768, 4608 * 6144]) {
      const { blocks, globalOffset, partialOffset, partials } = nvfp4ScaleLayout(elements);
      expect(partials).toBeGreaterThanOrEqual(1);
      expect(globalOffset).toBeGreaterThanOrEqual(blocks); // after the block-scale codes
      expect(partialOffset + 4 * partials).toBeLessThanOrEqual(blocks * 4); // fp32 [rows, cols/16] bytes
    }
    for (const q of quantizes) {
      const scale = graph.types.get(q.outputs[1]) as unknown as { shape: number[] };
      expect(scale.shape.reduce((a, b) => a * b, 1) * 4).toBeGreaterThanOrEqual(nvfp4ScaleLayout(scale.shape.reduce((a, b) => a * b, 1) * 16).partialOffset + 4);
    }
  });

  it('rejects a tensor too small to hold the global scale, naming it', () => {
    expect(() => renderNvfp4Quantize({ kind: 'nvfp4-quantize', inType: '__nv_bfloat16', elements: 128 })).toThrow(/Quantize \(nvfp4\) of 128 elements.*at least 192 elements/);
  });

  it.each(['b200', 'h100'] as const)('builds for %s with nvcc, no spills', async (target) => {
    const kernels = plan.kernels.filter((k) => k.name.startsWith('q4_'));
    expect(kernels.length).toBeGreaterThanOrEqual(2);
    const report = await buildKernels([{ name: `nvfp4_${target}`, source: renderUnit(kernels), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const functions = report.units[0].functions;
    for (const k of kernels) expect(functions.some((f) => f.name === k.name), k.name).toBe(true);
    expect(functions.every((f) => f.spillStoreBytes === 0)).toBe(true);
  });
});
