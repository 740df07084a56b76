/**
 * fuse-horizontal (passes/fuse-horizontal.ts): independent twin row kernels become one
 * dc.SegmentedKernel whose body is the two kernels. Structure before/after, the same values from
 * the reference executor, and the cases that must stay apart: a kernel feeding its twin, rows of
 * another width, dead kernels, and a second merge that would close a cycle through the first. The
 * full-size Flux.2 [dev] and Qwen-Image graphs: every text-stream row kernel runs inside one.
 */
import { describe, expect, it } from 'vitest';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { specialise } from '../../compiler/ir/specialise.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { FULL_MODELS as FULL, fullModelPath } from '../../compiler/full-models.ts';
import { fuseElementwise } from '../../passes/fuse-elementwise.ts';
import { fuseHorizontal } from '../../passes/fuse-horizontal.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy } from '../../passes/quantize/policy.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, opsOf, randomTensor } from '../helpers/graph.ts';

const RULE = 'independent twin row kernels => SegmentedKernel';
const D = 16;
const segmented = (g: Graph): Node[] => g.nodes.filter((n) => n.domain === 'dc' && n.op === 'SegmentedKernel');

/** fuse-elementwise then fuse-horizontal; the result is sorted and computes the same values. */
function fuse(g: Inferred): { after: Graph; fired: number } {
  const grouped = applyPass(fuseElementwise, g).after;
  const { after, report } = applyPass(fuseHorizontal, grouped);
  expectTopologicallySorted(after.graph);
  expect(after.graph.outputs).toEqual(g.graph.outputs);
  expectSameResults(g.graph, after.graph, 5);
  return { after: after.graph, fired: report.rewrites[RULE] };
}

/** One stream's pre-attention kernel: LayerNorm + Modulate + per-token fp8 Quantize, then its GEMM. */
const stream = (s: string): [string, string[], string[], Record<string, number | string>?][] => [
  ['LayerNormalization', [`x_${s}`, 'lnw'], [`n_${s}`], { axis: -1, epsilon: 1e-6 }],
  ['dc.Modulate', [`n_${s}`, `scale_${s}`, `shift_${s}`], [`m_${s}`]],
  ['dc.Quantize', [`m_${s}`], [`q_${s}`, `qs_${s}`], { format: 'fp8', axis: -1 }],
  ['dc.QLinear', [`q_${s}`, `qs_${s}`, 'wq', 'ws'], [`y_${s}`], { transB: 1, format: 'fp8', to: 1 }],
];
const twoStreams = (txtRows: number, txtWidth = D) => buildGraph({
  inputs: {
    x_img: ['float32', [1, 8, D]], scale_img: ['float32', [1, 1, D]], shift_img: ['float32', [1, 1, D]],
    x_txt: ['float32', [1, txtRows, txtWidth]], scale_txt: ['float32', [1, 1, txtWidth]], shift_txt: ['float32', [1, 1, txtWidth]],
  },
  constants: {
    lnw: randomTensor([D], 1), W: randomTensor([4, D], 2, 'float32', 0.3),
    ...(txtWidth === D ? {} : { lnw_txt: randomTensor([txtWidth], 3), W_txt: randomTensor([4, txtWidth], 4, 'float32', 0.3) }),
  },
  nodes: [
    ['dc.Quantize', ['W'], ['wq', 'ws'], { format: 'fp8', axis: 1 }],
    ...(txtWidth === D ? [] : [['dc.Quantize', ['W_txt'], ['wq_txt', 'ws_txt'], { format: 'fp8', axis: 1 }] as [string, string[], string[], Record<string, number | string>]]),
    ...stream('img'),
    ...(txtWidth === D ? stream('txt') : stream('txt').map(([op, ins, outs, attrs]) => [op, ins.map((x) => (x === 'lnw' ? 'lnw_txt' : x === 'wq' ? 'wq_txt' : x === 'ws' ? 'ws_txt' : x)), outs, attrs] as [string, string[], string[], Record<string, number | string>?])),
  ],
  outputs: ['y_img', 'y_txt'],
});

describe('fuse-horizontal: independent twin row kernels => SegmentedKernel', () => {
  it('the image and text streams\' LayerNorm+Modulate+Quantize kernels become one launch of two segments', () => {
    const g = twoStreams(3);
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    const [k] = segmented(after);
    expect(k.body!.nodes.map((n) => n.op)).toEqual(['FusedKernel', 'FusedKernel']);
    expect(k.body!.nodes.map((n) => n.body!.nodes.map((b) => b.op))).toEqual([['LayerNormalization', 'Modulate', 'Quantize'], ['LayerNormalization', 'Modulate', 'Quantize']]);
    // Its outputs are both kernels' (in body order), its inputs what either reads.
    expect(k.outputs).toEqual(['q_img', 'qs_img', 'q_txt', 'qs_txt']);
    expect(new Set(k.inputs)).toEqual(new Set(['x_img', 'lnw', 'scale_img', 'shift_img', 'x_txt', 'scale_txt', 'shift_txt']));
    expect(opsOf(after).filter((op) => op !== 'Quantize')).toEqual(['SegmentedKernel', 'QLinear', 'QLinear']);
  });

  it('a kernel that feeds its twin (through a GEMM) stays apart', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 4, D]] },
      constants: { lnw: randomTensor([D], 1), W: randomTensor([D, D], 2, 'float32', 0.3) },
      nodes: [
        ['LayerNormalization', ['x', 'lnw'], ['a'], { axis: -1 }],
        ['dc.Linear', ['a', 'W'], ['l'], { transB: 1 }],
        ['LayerNormalization', ['l', 'lnw'], ['b'], { axis: -1 }],
      ],
      outputs: ['b'],
    });
    expect(fuse(g).fired).toBe(0);
  });

  it('rows of another width stay apart (the segments would need other block sizes)', () => {
    expect(fuse(twoStreams(3, 2 * D)).fired).toBe(0);
  });

  it('a dead twin is never merged into a live kernel (it would run)', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, 4, D]], y: ['float32', [1, 2, D]] },
      constants: { lnw: randomTensor([D], 1) },
      nodes: [
        ['LayerNormalization', ['x', 'lnw'], ['a'], { axis: -1 }],
        ['LayerNormalization', ['y', 'lnw'], ['b'], { axis: -1 }],
        ['Sigmoid', ['b'], ['unused']],
      ],
      outputs: ['a'],
    });
    expect(fuse(g).fired).toBe(0);
  });

  it('a second merge that would close a cycle through the first is refused', () => {
    // A and B are twins (LayerNorm), C and D twins (Quantize); B reads C (through a GEMM) and D
    // reads A. Merged {A, B} needs C before it, so {C, D} (needing A first) would be a cycle.
    const g = buildGraph({
      inputs: { x: ['float32', [1, 4, D]], z: ['float32', [1, 4, D]] },
      constants: { lnw: randomTensor([D], 1), W: randomTensor([D, D], 2, 'float32', 0.3) },
      nodes: [
        ['LayerNormalization', ['x', 'lnw'], ['A'], { axis: -1 }],
        ['dc.Quantize', ['z'], ['C', 'Cs'], { format: 'bf16', axis: -1 }],
        ['dc.Linear', ['C', 'W'], ['lc'], { transB: 1 }],
        ['LayerNormalization', ['lc', 'lnw'], ['B'], { axis: -1 }],
        ['dc.Linear', ['A', 'W'], ['la'], { transB: 1 }],
        ['dc.Quantize', ['la'], ['Dq', 'Ds'], { format: 'bf16', axis: -1 }],
      ],
      outputs: ['B', 'Dq', 'Cs', 'Ds'],
    });
    const { after, fired } = fuse(g);
    expect(fired).toBe(1);
    expect(segmented(after).map((k) => k.outputs)).toEqual([['A', 'B']]);
  });
});

describe('fuse-horizontal on the full-size transformers (fp8, h100)', () => {
  const rows = (g: Graph, n: Node) => (g.types.get(n.outputs[0]) as unknown as { shape: number[] }).shape.slice(0, -1).reduce((a, b) => a * b, 1);
  it.each([['flux2_dev', 512, 6144, 32], ['qwen_image', 256, 3072, 237]] as const)('%s: every text-stream row kernel (%i rows of %i) runs in a segmented launch beside its image twin (%i launches)', (name, textRows, width, launches) => {
    const { graph } = importOnnx(fullModelPath(name));
    const out = runPipeline(inferTypes(specialise(graph, FULL[name])), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'), 'h100')) }).graph;
    const kernels = segmented(out);
    expect(kernels).toHaveLength(launches);
    for (const k of kernels) expect(k.body!.nodes.map((n) => rows(out, n)).sort((a, b) => a - b)).toEqual([textRows, 4096]);
    // No row kernel (a row reduction in it) of the text stream's size is left standing alone
    // (Qwen-Image's norm of the text encoder's 3584-wide states, before the streams, has no twin).
    const reduces = (b: Node) => ['LayerNormalization', 'RMSNormalization', 'Softmax'].includes(b.op) || (b.op === 'Quantize' && [-1, undefined].includes(b.attrs.axis as number | undefined));
    const alone = out.nodes.filter((n) => (n.body?.nodes ?? [n]).some(reduces) && n.op !== 'SegmentedKernel' && rows(out, n) === textRows && (out.types.get(n.outputs[0]) as unknown as { shape: number[] }).shape.at(-1) === width);
    expect(alone.map((n) => n.attrs.ops ?? n.op)).toEqual([]);
  }, 120_000);
});
