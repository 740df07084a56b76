/**
 * Structural tests for the two quantize passes (passes/quantize/insert.ts, fold.ts) and the
 * precision policy (passes/quantize/policy.ts) on a small graph of dc.Linear nodes: which GEMMs are
 * quantized and why, the Q/DQ pairs inserted (activations per token, weights per output channel),
 * their fold into one dc.QLinear, results close to fp32, and the policy's globs.
 */
import { describe, expect, it } from 'vitest';
import { CompileError } from '../../compiler/errors.ts';
import { runReference } from '../../compiler/exec/reference.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import type { Inferred } from '../../compiler/ir/infer.ts';
import { compareOutputs } from '../../compiler/verify.ts';
import { runPipeline, pipelineFor } from '../../passes/pipeline.ts';
import { removeDead } from '../../passes/simplify/remove-dead.ts';
import { foldQuantize } from '../../passes/quantize/fold.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { type PrecisionPolicy, defaultPolicy, fp8Attention, int8Attention, loadPolicy } from '../../passes/quantize/policy.ts';
import { applyPass, buildGraph, expectSameResults, expectTopologicallySorted, ints, opsOf, randomInputs, randomTensor } from '../helpers/graph.ts';
import { policyFile } from '../helpers/policy.ts';

const S = 4, K = 16;

/**
 *   e = Linear(x, We)            reads a graph input                     -> kept
 *   h = Silu(e)
 *   q = Linear(h, Wq, bq) tB=1    per-token, inside                      -> quantized (weight axis 1)
 *   k = Linear(h, Wk)     tB=0    per-token, inside                      -> quantized (weight axis 0)
 *   t = Linear(Silu(temb), Wt)    one row                                -> kept
 *   s = q + k
 *   z = Linear(s, Wz)             per-token, inside, K = 8               -> quantized (fp8), kept (nvfp4)
 *   y = Linear(s, Wo)             writes the graph output                 -> kept
 */
function smallGraph(): Inferred {
  return buildGraph({
    inputs: { x: ['float32', [1, S, K]], temb: ['float32', [1, K]] },
    constants: {
      We: randomTensor([K, K], 1, 'float32', 0.25), Wq: randomTensor([8, K], 2, 'float32', 0.25), bq: randomTensor([8], 3, 'float32', 0.1),
      Wk: randomTensor([K, 8], 4, 'float32', 0.25), Wt: randomTensor([K, K], 5, 'float32', 0.25), Wz: randomTensor([8, 8], 6, 'float32', 0.3),
      Wo: randomTensor([8, 8], 7, 'float32', 0.3),
    },
    nodes: [
      ['dc.Linear', ['x', 'We'], ['e'], { transB: 1 }],
      ['dc.Silu', ['e'], ['h']],
      ['dc.Linear', ['h', 'Wq', 'bq'], ['q'], { transB: 1 }],
      ['dc.Linear', ['h', 'Wk'], ['k'], { transB: 0 }],
      ['dc.Silu', ['temb'], ['ts']],
      ['dc.Linear', ['ts', 'Wt'], ['t'], { transB: 1 }],
      ['Sigmoid', ['t'], ['tt']],
      ['Add', ['q', 'k'], ['s']],
      ['dc.Linear', ['s', 'Wz'], ['z'], { transB: 1 }],
      ['Sigmoid', ['z'], ['zz']],
      ['dc.Linear', ['s', 'Wo'], ['y'], { transB: 1 }],
    ],
    outputs: ['y', 'tt', 'zz'],
  });
}

const policy = (over: Partial<PrecisionPolicy> = {}): PrecisionPolicy => ({ ...defaultPolicy('fp8'), source: 'test policy', ...over });

/** Runs insertQuantize(policy) once; returns the graph and the decisions by Linear output. */
function insert(g: Inferred, p: PrecisionPolicy) {
  const pass = insertQuantize(p);
  const { after, report } = applyPass(pass, g);
  expectTopologicallySorted(after.graph);
  return { after, report, pass, decision: new Map(pass.decisions.map((d) => [d.node, d])) };
}

const shapeOf = (g: Graph, v: string): number[] => {
  const t = g.types.get(v);
  return t?.kind === 'tensor' ? (t.shape as number[]).slice() : [];
};
const producer = (g: Graph, v: string): Node | undefined => g.nodes.find((n) => n.outputs.includes(v));
const linearOf = (g: Graph, out: string): Node => {
  const n = producer(g, out)!;
  expect(n.domain).toBe('dc');
  return n;
};

function relL2(before: Graph, after: Graph, bound: number): void {
  expectSameResults(before, after, 11, { tolerance: bound });
}

describe('insertQuantize (fp8) with the structural defaults', () => {
  it('decides by structure: per-token GEMMs inside quantized; one row, graph input, graph output kept', () => {
    const { decision } = insert(smallGraph(), policy());
    expect(decision.get('q')).toMatchObject({ quantized: true, transB: true, weights: ['Wq'], shape: [8, K] });
    expect(decision.get('k')).toMatchObject({ quantized: true, transB: false, weights: ['Wk'] });
    expect(decision.get('z')).toMatchObject({ quantized: true });
    expect(decision.get('q')!.reason).toMatch(/^per-token GEMM/);
    expect(decision.get('e')).toMatchObject({ quantized: false });
    expect(decision.get('e')!.reason).toMatch(/^reads a graph input/);
    expect(decision.get('t')).toMatchObject({ quantized: false });
    expect(decision.get('t')!.reason).toMatch(/^one row per sample/);
    expect(decision.get('y')).toMatchObject({ quantized: false });
    expect(decision.get('y')!.reason).toMatch(/^writes the graph output/);
  });

  it('a quantized Linear reads Dequantize(Quantize(·)) on both operands: activation axis -1, weight axis 1 (transB = 1) or 0 (transB = 0)', () => {
    const g = smallGraph();
    const { after, report } = insert(g, policy());
    expect(report.rewrites['Linear => fp8 Q/DQ']).toBe(3);
    const graph = after.graph;
    for (const [out, x, w, wAxis, bias] of [['q', 'h', 'Wq', 1, 'bq'], ['k', 'h', 'Wk', 0, undefined], ['z', 's', 'Wz', 1, undefined]] as const) {
      const lin = linearOf(graph, out);
      expect(lin.op).toBe('Linear');
      expect(lin.inputs[2]).toBe(bias);
      const [dx, dw] = [producer(graph, lin.inputs[0])!, producer(graph, lin.inputs[1])!];
      expect(dx).toMatchObject({ op: 'Dequantize', domain: 'dc', attrs: { axis: -1 } });
      expect(dw).toMatchObject({ op: 'Dequantize', domain: 'dc', attrs: { axis: wAxis } });
      const [qx, qw] = [producer(graph, dx.inputs[0])!, producer(graph, dw.inputs[0])!];
      expect(qx).toMatchObject({ op: 'Quantize', domain: 'dc', inputs: [x], attrs: { format: 'fp8', axis: -1 } });
      expect(qw).toMatchObject({ op: 'Quantize', domain: 'dc', inputs: [w], attrs: { format: 'fp8', axis: wAxis } });
      expect(dx.inputs).toEqual(qx.outputs);
      expect(dw.inputs).toEqual(qw.outputs);
      // Per token: one scale per row of x; per output channel: one scale per weight row/column.
      expect(shapeOf(graph, qx.outputs[1])).toEqual([...shapeOf(g.graph, x).slice(0, -1), 1]);
      const [rows, cols] = shapeOf(g.graph, w);
      expect(shapeOf(graph, qw.outputs[1])).toEqual(wAxis === 1 ? [rows, 1] : [1, cols]);
    }
    // The kept GEMMs read their operands as before.
    expect(linearOf(graph, 'e').inputs).toEqual(['x', 'We']);
    expect(linearOf(graph, 't').inputs).toEqual(['ts', 'Wt']);
    expect(linearOf(graph, 'y').inputs).toEqual(['s', 'Wo']);
    // q and k read the same activation h: it is quantized once (3 weights + activations h and s).
    expect(opsOf(graph).filter((op) => op === 'Quantize')).toHaveLength(5);
    expect(opsOf(graph).filter((op) => op === 'Dequantize')).toHaveLength(5);
    relL2(g.graph, graph, 0.05);
  });

  it('foldQuantize: each quantized Linear becomes one QLinear on the quantized operands, the Dequantize nodes go', () => {
    const g = smallGraph();
    const inserted = insert(g, policy()).after;
    const { after: folded, report } = applyPass(foldQuantize, inserted);
    expectTopologicallySorted(folded.graph);
    expect(report.rewrites['Linear(DQ, DQ) => QLinear']).toBe(3);
    // The Dequantize shared by q and k is unused once both are folded: remove-dead takes it.
    const graph = applyPass(removeDead, folded).after.graph;
    expect(opsOf(graph)).not.toContain('Dequantize');
    expect(opsOf(graph).filter((op) => op === 'QLinear')).toHaveLength(3);
    expect(opsOf(graph).filter((op) => op === 'Linear')).toHaveLength(3);
    for (const [out, x, w, transB, bias] of [['q', 'h', 'Wq', 1, 'bq'], ['k', 'h', 'Wk', 0, undefined], ['z', 's', 'Wz', 1, undefined]] as const) {
      const ql = linearOf(graph, out);
      expect(ql).toMatchObject({ op: 'QLinear', domain: 'dc', attrs: { transB, format: 'fp8', to: 1 } });
      expect(ql.inputs).toHaveLength(bias ? 5 : 4);
      expect(ql.inputs[4]).toBe(bias);
      const [qx, qw] = [producer(graph, ql.inputs[0])!, producer(graph, ql.inputs[2])!];
      expect(qx).toMatchObject({ op: 'Quantize', inputs: [x], attrs: { axis: -1 } });
      expect(ql.inputs.slice(0, 2)).toEqual(qx.outputs);
      expect(qw).toMatchObject({ op: 'Quantize', inputs: [w], attrs: { axis: transB ? 1 : 0 } });
      expect(ql.inputs.slice(2, 4)).toEqual(qw.outputs);
      expect(graph.types.get(out)).toEqual(g.graph.types.get(out));
    }
    // Folding is exact (QLinear computes Linear(DQ, DQ)), and close to fp32.
    expectSameResults(inserted.graph, graph, 11);
    relL2(g.graph, graph, 0.05);
  });

  it('the whole fp8 pipeline: close to fp32, the activation Quantize fused into the Silu that produces it', () => {
    const g = smallGraph();
    const quantize = insertQuantize(policy());
    const { graph } = runPipeline(g, { passes: pipelineFor(quantize) });
    expectTopologicallySorted(graph);
    expect(opsOf(graph).filter((op) => op === 'QLinear')).toHaveLength(3);
    expect(opsOf(graph)).not.toContain('Dequantize');
    const kernel = graph.nodes.find((n) => n.op === 'FusedKernel' && n.body!.nodes.some((b) => b.op === 'Silu' && b.inputs[0] === 'e'));
    expect(kernel?.body!.nodes.map((n) => n.op)).toContain('Quantize');
    relL2(g.graph, graph, 0.05);
  });
});

describe('the FP8 GEMMs\' simulated accumulation (dc.QLinear accumulate)', () => {
  it('"sm90" only for an h100 with fast accumulation: its tensor cores\' sums; "exact" otherwise', () => {
    expect(insertQuantize(policy(), 'h100').accumulate).toBe('sm90');
    expect(insertQuantize(policy(), 'b200').accumulate).toBe('exact');
    expect(insertQuantize(policy({ accumulation: 'fp32' }), 'h100').accumulate).toBe('exact');
    expect(insertQuantize({ ...defaultPolicy('nvfp4'), source: 'test policy' }, 'h100').accumulate).toBe('exact');
    expect(insertQuantize(policy()).accumulate).toBe('exact');
  });

  it('the h100 pipeline records it on every fp8 QLinear, and its results stay close to the exact sums', () => {
    const g = smallGraph();
    const sm90 = runPipeline(g, { passes: pipelineFor(insertQuantize(policy(), 'h100')) }).graph;
    const exact = runPipeline(g, { passes: pipelineFor(insertQuantize(policy())) }).graph;
    const qlinears = (graph: Graph) => graph.nodes.filter((n) => n.op === 'QLinear');
    expect(qlinears(sm90)).toHaveLength(3);
    for (const n of qlinears(sm90)) expect(n.attrs.accumulate).toBe('sm90');
    for (const n of qlinears(exact)) expect(n.attrs.accumulate).toBeUndefined();
    expectSameResults(exact, sm90, 11, { tolerance: 1e-2 });
    // ... but not the same: the reference executor took the tensor cores' truncating sums.
    const inputs = randomInputs(exact, 11);
    const [a, b] = [exact, sm90].map((graph) => runReference(graph, inputs));
    expect(compareOutputs(b, a).relL2).toBeGreaterThan(0);
  });
});

describe('precision policy overrides and errors', () => {
  it('keep globs override the structure (a per-token GEMM stays unquantized)', () => {
    const { decision } = insert(smallGraph(), policy({ keep: ['Wq'] }));
    expect(decision.get('q')).toMatchObject({ quantized: false, reason: "policy keeps 'Wq'" });
    expect(decision.get('k')!.quantized).toBe(true);
  });

  it('quantize globs override the structure (one row, graph input, graph output quantized)', () => {
    const g = smallGraph();
    const { decision, after } = insert(g, policy({ quantize: ['Wt', 'W?'] }));
    expect(decision.get('t')).toMatchObject({ quantized: true, reason: "policy quantizes 'Wt'" });
    expect(decision.get('e')).toMatchObject({ quantized: true, reason: "policy quantizes 'W?'" });
    expect(decision.get('y')).toMatchObject({ quantized: true, reason: "policy quantizes 'W?'" });
    expect(producer(after.graph, linearOf(after.graph, 't').inputs[0])?.op).toBe('Dequantize');
    relL2(g.graph, after.graph, 0.1); // every GEMM of the chain in fp8 now: errors compound
  });

  it('keep wins over quantize when both match; * matches across dots', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [1, S, K]] },
      constants: { 'blocks.0.ff.weight': randomTensor([K, K], 1), 'blocks.0.attn.weight': randomTensor([K, K], 2) },
      nodes: [
        ['Sigmoid', ['x'], ['h']],
        ['dc.Linear', ['h', 'blocks.0.ff.weight'], ['a'], { transB: 1 }],
        ['dc.Linear', ['h', 'blocks.0.attn.weight'], ['b'], { transB: 1 }],
        ['Add', ['a', 'b'], ['c']],
        ['Sigmoid', ['c'], ['y']],
      ],
      outputs: ['y'],
    });
    const { decision } = insert(g, policy({ keep: ['*.ff.*'], quantize: ['blocks.*'] }));
    expect(decision.get('a')).toMatchObject({ quantized: false, reason: "policy keeps '*.ff.*'" });
    expect(decision.get('b')).toMatchObject({ quantized: true, reason: "policy quantizes 'blocks.*'" });
  });

  it('structural defaults off: every GEMM not kept by a glob is quantized', () => {
    const { decision } = insert(smallGraph(), policy({ structural: false, keep: ['Wo'] }));
    for (const out of ['e', 'q', 'k', 't', 'z']) expect(decision.get(out), out).toMatchObject({ quantized: true });
    expect(decision.get('y')).toMatchObject({ quantized: false, reason: "policy keeps 'Wo'" });
  });

  it('a policy file: gemmScales "auto" (default), "readers" or "gemm"; an unknown value or key is an error naming it', () => {
    const file = policyFile;
    expect(loadPolicy(file({}), 'fp8').gemmScales).toBe('auto');
    expect(loadPolicy(file({ gemmScales: 'readers' }), 'fp8').gemmScales).toBe('readers');
    expect(loadPolicy(file({ gemmScales: 'gemm' }), 'fp8')).toMatchObject({ gemmScales: 'gemm', attention: 'auto', structural: true });
    expect(() => loadPolicy(file({ gemmScales: 'epilogue' }), 'fp8')).toThrow(/"gemmScales" to be "auto", "readers" or "gemm", found "epilogue"/);
    expect(() => loadPolicy(file({ gemmscales: 'gemm' }), 'fp8')).toThrow(/only the keys keep, quantize, structural, attention, gemmScales, accumulation, gemm, ownGemmMinTiles, oneRowGemms, oneRowMinBytes, found 'gemmscales'/);
    expect(loadPolicy(file({}), 'fp8')).toMatchObject({ oneRowGemms: 'fp8-weights', oneRowMinBytes: 256 * 2 ** 20 });
    expect(loadPolicy(file({ oneRowGemms: 'high', oneRowMinBytes: 0 }), 'fp8')).toMatchObject({ oneRowGemms: 'high', oneRowMinBytes: 0 });
  });

  it('attention "auto" (default): 8-bit Q·Kᵀ (on s8 codes) for long bidirectional attention under fp8 only; "fp8" / "bf16" for every one; another value is an error', () => {
    const auto = defaultPolicy('fp8');
    expect(auto.attention).toBe('auto');
    const a = (causal: boolean, queries: number, keys: number, convolves = false) => ({ causal, queries, keys, convolves });
    expect(fp8Attention(auto, a(false, 4608, 4608))).toBe(true);
    expect(int8Attention(auto, a(false, 4608, 4608))).toBe(true); // on s8 codes: insert asks int8Attention first
    expect(fp8Attention(auto, a(false, 4352, 4352))).toBe(true);
    expect(fp8Attention(auto, a(true, 4608, 4608))).toBe(false); // causal: the text encoders
    expect(fp8Attention(auto, a(false, 512, 512))).toBe(false);
    expect(fp8Attention(auto, a(false, 4096, 512))).toBe(false);
    expect(fp8Attention(auto, a(false, 16384, 16384, true))).toBe(false); // a VAE decoder's mid-block attention
    expect(fp8Attention(defaultPolicy('nvfp4'), a(false, 4608, 4608))).toBe(false);
    expect(fp8Attention({ ...auto, attention: 'fp8' }, a(true, 16, 16))).toBe(true);
    expect(fp8Attention({ ...auto, attention: 'bf16' }, a(false, 4608, 4608))).toBe(false);
    expect(() => loadPolicy(policyFile({ attention: 'fp16' }), 'fp8')).toThrow(/"attention" to be "auto", "bf16", "fp8", "fp8-qk", "fp8-pv", "int8" or "int8-pv", found "fp16"/);
  });

  it('a policy file: accumulation "fast" (default) or "fp32"; another value is an error naming it', () => {
    const file = policyFile;
    expect(loadPolicy(file({}), 'fp8').accumulation).toBe('fast');
    expect(loadPolicy(file({ accumulation: 'fp32' }), 'fp8').accumulation).toBe('fp32');
    expect(() => loadPolicy(file({ accumulation: 'bf16' }), 'fp8')).toThrow(/"accumulation" to be "fast" or "fp32", found "bf16"/);
  });

  it('a glob matching no GEMM weight throws a CompileError naming it', () => {
    for (const p of [policy({ keep: ['*transformer_blockz*'] }), policy({ quantize: ['Wq', 'Wnope'] })]) {
      const bad = [...p.keep, ...p.quantize].find((x) => x !== 'Wq')!;
      let error: unknown;
      try {
        insert(smallGraph(), p);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CompileError);
      expect((error as Error).message).toContain(`'${bad}'`);
    }
  });

  it('views between the graph input/output and the GEMM do not hide the structure', () => {
    const g = buildGraph({
      inputs: { x: ['float32', [S, K]] },
      constants: { W0: randomTensor([K, K], 1), W1: randomTensor([K, K], 2), shape: ints([1, S, K]) },
      nodes: [
        ['Reshape', ['x', 'shape'], ['xr']],
        ['dc.Linear', ['xr', 'W0'], ['a'], { transB: 1 }],
        ['Sigmoid', ['a'], ['h']],
        ['dc.Linear', ['h', 'W1'], ['b'], { transB: 1 }],
        ['Reshape', ['b', 'shape'], ['y']],
      ],
      outputs: ['y'],
    });
    const { decision } = insert(g, policy());
    expect(decision.get('a')!.reason).toMatch(/^reads a graph input/);
    expect(decision.get('b')!.reason).toMatch(/^writes the graph output/);
  });

  it('nvfp4: a GEMM whose K is not a multiple of 16 stays in high precision; the others get 16-blocks', () => {
    const g = smallGraph();
    const { decision, after } = insert(g, { ...defaultPolicy('nvfp4'), source: 'test policy' });
    expect(decision.get('z')).toMatchObject({ quantized: false });
    expect(decision.get('z')!.reason).toMatch(/multiple of 16/);
    expect(decision.get('q')!.quantized).toBe(true);
    const dw = producer(after.graph, linearOf(after.graph, 'q').inputs[1])!;
    const qw = producer(after.graph, dw.inputs[0])!;
    expect(qw.attrs).toMatchObject({ format: 'nvfp4', axis: 1 });
    expect(after.graph.types.get(qw.outputs[1])).toMatchObject({ shape: [8, K / 16] });
    relL2(g.graph, after.graph, 0.3);
  });
});
