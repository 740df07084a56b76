/**
 * fuse-elementwise, last-axis Concat (passes/fuse-elementwise.ts): Flux.2's single blocks
 * concatenate the attention output with the MLP activation (a SwiGLU) and quantize the row per
 * token; the Concat joins the row kernel of the Quantize and the SwiGLU becomes its part's
 * prologue, so SwiGLU + Concat + Quantize are one kernel and the concatenation is never written.
 * Checked: the structure (bodies, kernel inputs and outputs), that the fused graph computes what
 * the unfused one does on the reference executor, what must stay a Concat, and the counts on the
 * tiny Flux.2 fixture and on flux2_dev's graph (the bundled full-size export, models/full).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fullModelPath } from '../../compiler/full-models.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { specialise } from '../../compiler/ir/specialise.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { fuseElementwise, makeFuseElementwise } from '../../passes/fuse-elementwise.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy } from '../../passes/quantize/policy.ts';
import { tinyDir } from '../helpers/fixtures.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, opsOf, randomInputs, randomTensor } from '../helpers/graph.ts';

const RULE = 'element-wise group => FusedKernel';
const S = 3, D = 8, H = 16;
const kernels = (g: Graph): Node[] => g.nodes.filter((n) => n.domain === 'dc' && n.op === 'FusedKernel');
const bodyOps = (n: Node): string[] => n.body!.nodes.map((b) => b.op);

/** attn ‖ SwiGLU(h) -> per-token fp8 Quantize -> QLinear (a single block's tail). */
function singleBlockTail(opts: { swigluAlsoRead?: boolean; axis?: number; consumer?: 'quantize' | 'linear' } = {}) {
  const consumer = opts.consumer ?? 'quantize';
  return buildGraph({
    inputs: { attn: ['float32', [1, S, D]], h: ['float32', [1, S, 2 * H]] },
    constants: { W: randomTensor([4, D + H], 5, 'float32', 0.3) },
    nodes: [
      ['dc.SwiGLU', ['h'], ['a']],
      ['Concat', ['attn', 'a'], ['c'], { axis: opts.axis ?? -1 }],
      ...(consumer === 'quantize' ? [
        ['dc.Quantize', ['c'], ['q', 'qs'], { format: 'fp8', axis: -1 }],
        ['dc.Quantize', ['W'], ['wq', 'ws'], { format: 'fp8', axis: 1 }],
        ['dc.QLinear', ['q', 'qs', 'wq', 'ws'], ['o'], { transB: 1, format: 'fp8', to: 1 }],
      ] as const : [['dc.Linear', ['c', 'W'], ['o'], { transB: 1 }]] as const),
      ...(opts.swigluAlsoRead ? [['Tanh', ['a'], ['t']] as const] : []),
    ] as never,
    outputs: ['o', ...(opts.swigluAlsoRead ? ['t'] : [])],
  });
}

function fuse(g: ReturnType<typeof buildGraph>) {
  const { after, report } = applyPass(fuseElementwise, g);
  expectTopologicallySorted(after.graph);
  expectSameResults(g.graph, after.graph, 3, { inputs: randomInputs(g.graph, 3) });
  return { after: after.graph, fired: report.rewrites[RULE] };
}

describe('fuse-elementwise: a last-axis Concat joins the row kernel that consumes it', () => {
  it('SwiGLU + Concat + Quantize become one kernel reading attn and h, writing q and its scale', () => {
    const { after, fired } = fuse(singleBlockTail());
    expect(fired).toBe(1);
    expect(opsOf(after)).toEqual(['FusedKernel', 'Quantize', 'QLinear']);
    const [k] = kernels(after);
    expect(bodyOps(k)).toEqual(['SwiGLU', 'Concat', 'Quantize']);
    expect(new Set(k.inputs)).toEqual(new Set(['attn', 'h']));
    expect([...k.outputs].sort()).toEqual(['q', 'qs']);
    expect(after.nodes.some((n) => n.outputs.includes('c') && n.op === 'Concat')).toBe(false);
  });

  it('a SwiGLU also read elsewhere stays its own launch; the Concat still joins the Quantize', () => {
    const { after } = fuse(singleBlockTail({ swigluAlsoRead: true }));
    const k = kernels(after).find((n) => n.outputs.includes('q'))!;
    expect(bodyOps(k)).toEqual(['Concat', 'Quantize']);
    expect(new Set(k.inputs)).toEqual(new Set(['attn', 'a']));
    const maker = after.nodes.find((n) => n.outputs.includes('a'))!; // SwiGLU (+ the Tanh that reads it)
    expect(maker).not.toBe(k);
    expect(maker.op === 'SwiGLU' || bodyOps(maker).includes('SwiGLU')).toBe(true);
  });

  describe('must not fuse', () => {
    it('a Concat with no row reduction after it (a GEMM reads it): Concat and SwiGLU stay as they are', () => {
      const g = singleBlockTail({ consumer: 'linear' });
      const { after, fired } = fuse(g);
      expect(fired ?? 0).toBe(0);
      expect(opsOf(after)).toEqual(opsOf(g.graph));
    });

    it('a Concat along another axis', () => {
      const g = buildGraph({
        inputs: { x: ['float32', [1, S, D]], y: ['float32', [1, S, D]] },
        nodes: [
          ['Concat', ['x', 'y'], ['c'], { axis: 1 }],
          ['dc.Quantize', ['c'], ['q', 'qs'], { format: 'fp8', axis: -1 }],
        ],
        outputs: ['q', 'qs'],
      });
      const { after } = fuse(g);
      expect(opsOf(after)).toEqual(['Concat', 'Quantize']);
    });

    it('parts whose widths are not multiples of 8 (a row kernel reads whole 16-byte vectors of one part)', () => {
      const g = buildGraph({
        inputs: { x: ['float32', [1, S, 4]], y: ['float32', [1, S, 12]] },
        nodes: [
          ['Concat', ['x', 'y'], ['c'], { axis: -1 }],
          ['dc.Quantize', ['c'], ['q', 'qs'], { format: 'fp8', axis: -1 }],
        ],
        outputs: ['q', 'qs'],
      });
      const { after } = fuse(g);
      expect(opsOf(after)).toEqual(['Concat', 'Quantize']);
    });
  });
});

function optimise(file: string, concat: boolean, shapes: Record<string, number> = {}) {
  const passes = pipelineFor(insertQuantize(defaultPolicy('fp8'))).map((p) => (p === fuseElementwise && !concat ? makeFuseElementwise({ concat: false }) : p));
  return runPipeline(inferTypes(specialise(importOnnx(file).graph, shapes)), { passes }).graph;
}
const count = (g: Graph, pred: (n: Node) => boolean) => g.nodes.filter(pred).length;
const fusedTail = (n: Node) => n.op === 'FusedKernel' && bodyOps(n).join('+') === 'SwiGLU+Concat+Quantize';
const lastAxisConcat = (g: Graph) => (n: Node) => n.op === 'Concat' && [-1, ((g.types.get(n.outputs[0]) as { shape: readonly unknown[] }).shape.length - 1)].includes(n.attrs.axis as number);

describe('Flux.2 single blocks', () => {
  it('tiny flux2 (fp8 pipeline): each single block\'s SwiGLU + Concat + Quantize is one kernel; the outputs are unchanged', () => {
    const file = join(tinyDir('flux2'), 'model.onnx');
    const unfused = optimise(file, false), fused = optimise(file, true);
    const blocks = count(unfused, (n) => n.op === 'SwiGLU');
    expect(blocks).toBeGreaterThan(0);
    expect(count(fused, fusedTail)).toBe(blocks);
    expect(count(fused, (n) => n.op === 'SwiGLU')).toBe(0);
    expect(count(unfused, lastAxisConcat(unfused)) - count(fused, lastAxisConcat(fused))).toBe(blocks);
    expect(count(unfused, (n) => n.op === 'Quantize') - count(fused, (n) => n.op === 'Quantize')).toBe(blocks);
    expect(fused.nodes.length).toBe(unfused.nodes.length - 2 * blocks);
    expectSameResults(unfused, fused, 7, { inputs: randomInputs(unfused, 7) });
  });

  it('flux2_dev: all 48 single blocks fuse (48 kernels, 48 Concats, Quantizes and SwiGLU launches fewer)', () => {
    const shapes = { img_tokens: 64, txt_tokens: 64 }, full = fullModelPath('flux2_dev');
    const unfused = optimise(full, false, shapes), fused = optimise(full, true, shapes);
    expect(count(fused, fusedTail)).toBe(48);
    expect(count(unfused, lastAxisConcat(unfused)) - count(fused, lastAxisConcat(fused))).toBe(48);
    expect(count(unfused, (n) => n.op === 'Quantize') - count(fused, (n) => n.op === 'Quantize')).toBe(48);
    expect(count(unfused, (n) => n.op === 'SwiGLU') - count(fused, (n) => n.op === 'SwiGLU')).toBe(48);
  }, 120_000);
});
