/**
 * Data-movement codegen (compiler/codegen/movement.ts) on the CPU machine: a Concat of whole 16-byte
 * vectors (Flux.2's text ‖ image hidden states) renders a vector loop beside the element loop, and
 * anything a vector could straddle or misread (a part not a whole number of vectors, a strided
 * window, another element type) renders the element loop only; both build for h100 and b200 with no
 * spill. Their numerics run on the GPU (test/gpu/cases.ts checks the tiny fixtures' movement kernels).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { concatVector, movementDescriptor, renderMovement } from '../compiler/codegen/movement.ts';
import { renderUnit } from '../compiler/codegen/render.ts';
import type { DType } from '../compiler/ir/dtype.ts';
import { buildGraph } from './helpers/graph.ts';

const concat = (parts: number[], inner: number, dtype: DType = 'bfloat16', strided = false) => {
  const g = buildGraph({
    inputs: Object.fromEntries(parts.map((n, i) => [`x${i}`, [dtype, [1, n, inner]]])),
    nodes: [['Concat', parts.map((_, i) => `x${i}`), ['y'], { axis: 1 }]],
    outputs: ['y'],
  }).graph;
  // A strided window: x0 read with a row stride of twice its width (a Split part's, say).
  return movementDescriptor(g, g.nodes[0], (v) => (strided && v === 'x0' ? [parts[0] * inner * 2, inner * 2, 1] : undefined));
};

describe('data-movement codegen: Concat', () => {
  it('moves whole 16-byte vectors where every part is a whole number of them', () => {
    const d = concat([512, 4096], 6144); // Flux.2's text ‖ image hidden states, bf16
    expect(concatVector(d)).toBe(8);
    const k = renderMovement(d, 'p');
    expect(k.source).toContain('reinterpret_cast<const uint4*>(in1 + (');
    expect(k.source).toMatch(/& 15ULL\) == 0ULL/); // the vector loop only for aligned pointers
    expect(k.source).toContain('out[k] = in1['); // the element loop otherwise
    expect(concatVector(concat([3, 5], 4, 'float32'))).toBe(4); // 12 and 20 floats: whole vectors
  });

  it('keeps the element loop where a vector could straddle two parts or misread a window', () => {
    for (const d of [concat([3, 5], 2, 'float32'), concat([512, 4096], 6144, 'bfloat16', true), concat([2, 2], 3)]) {
      expect(concatVector(d)).toBe(1);
      expect(renderMovement(d, 'p').source).not.toContain('uint4');
    }
  });

  it.each(['h100', 'b200'] as const)('both loops build for %s with no spill', async (target) => {
    const kernels = [concat([512, 4096], 6144), concat([3, 5], 4, 'float32'), concat([3, 5], 2, 'float32')].map((d) => renderMovement(d, 'p'));
    const report = await buildKernels([{ name: `movement_${target}`, source: renderUnit(kernels), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    expect(report.spills).toBe(0);
  }, 120_000);
});
