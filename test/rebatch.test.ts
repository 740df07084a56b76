/**
 * Rebatching (compiler/ir/rebatch.ts, `npx compile --batch N`): a batch-1 export run on two samples
 * at once gives each sample's batch-1 result. Checked on the reference executor, on the graph as
 * exported and after the whole pass pipeline (fp32 and the fp8 policy), with two different samples
 * (other latents, text, mask padding and timestep); and the fusions find the same structure at
 * batch 2 as at batch 1 (joint attention with its two segments and absorbed prologue, the one-row
 * modulation GEMM as a weight-only GEMV).
 */
import { describe, expect, it } from 'vitest';
import type { Graph } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { rebatch } from '../compiler/ir/rebatch.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { runReference } from '../compiler/exec/reference.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { fixtureInputs, randomInputsLike, tinyDir } from './helpers/fixtures.ts';
import { compileCli } from './helpers/cli.ts';
import { stackSamples } from '../runtime/executor/batch.ts';

const load = (name: string) => importOnnx(`${tinyDir(name)}/model.onnx`).graph;

/** Largest |difference| between each half of the batched output and that sample's own run, relative to the output's largest value. */
function halvesAgainst(batched: Tensor, one: Tensor, two: Tensor): number[] {
  expect(batched.shape).toEqual([2 * one.shape[0], ...one.shape.slice(1)]);
  const n = one.size, scale = Math.max(...one.toNumbers().map(Math.abs), 1e-30);
  return [one, two].map((ref, half) => {
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(Number(batched.data[half * n + i]) - Number(ref.data[i])));
    return worst / scale;
  });
}

const optimise = (g: Graph, precision: 'fp32' | 'fp8') =>
  runPipeline(inferTypes(g), precision === 'fp8' ? { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) } : {}).graph;

describe('rebatch', () => {
  it.each(['qwen_image', 'qwen_image_vae_decoder', 'flux2_vae_decoder'])('%s at batch 2 gives each sample its batch-1 output, exactly (graph as exported)', (name) => {
    const g = load(name);
    const a = fixtureInputs(name), b = randomInputsLike(name, 7);
    const two = rebatch(g, 2);
    expect(two.batch).toBe(2);
    const one = inferTypes(g).graph, batched = inferTypes(two).graph;
    for (const o of g.outputs) {
      const [ra, rb, rs] = [runReference(one, a)[o], runReference(one, b)[o], runReference(batched, stackSamples([a, b]))[o]];
      expect(halvesAgainst(rs, ra, rb), `${name} ${o}`).toEqual([0, 0]);
    }
  });

  // The text encoders' exports read the padding mask with a GatherND whose constant indices name
  // sample 0: at batch 2 the second sample would get the first one's mask. Refused, naming the node.
  // Flux.2's export reads img_ids[0] / txt_ids[0] (a Gather at constant index 0) likewise.
  it.each([['mistral_text_encoder', 'GatherND'], ['qwen_text_encoder', 'GatherND'], ['flux2', 'Gather'], ['flux2_opset23', 'Gather']])('%s cannot be rebatched: the error names the %s that pins sample 0', (name, op) => {
    expect(() => rebatch(load(name), 2)).toThrow(new RegExp(`${op} node .*expected '.*' to hold 2 samples .* this graph cannot be rebatched`));
  });

  it.each(['fp32', 'fp8'] as const)('qwen_image after the %s pass pipeline: same structure as batch 1, each sample its own result', (precision) => {
    const g = load('qwen_image');
    const a = fixtureInputs('qwen_image'), b = randomInputsLike('qwen_image', 11);
    const maskB = b.encoder_hidden_states_mask.toNumbers();
    expect(maskB.includes(0) && maskB.includes(1)).toBe(true); // sample b pads its text differently
    const one = optimise(g, precision), two = optimise(rebatch(g, 2), precision);
    const ops = (x: Graph) => x.nodes.map((n) => `${n.domain}:${n.op}`).sort().join();
    expect(ops(two)).toBe(ops(one));
    const packs = two.nodes.filter((n) => n.domain === 'dc' && (n.op === 'FusedAttention' || n.op === 'AttentionPack'));
    expect(packs.length).toBeGreaterThan(0);
    for (const p of packs) expect(p.attrs.segments, p.outputs[0]).toBe(2);
    if (precision === 'fp8') expect(two.nodes.filter((n) => n.op === 'WQLinear').length).toBe(one.nodes.filter((n) => n.op === 'WQLinear').length);
    const o = g.outputs[0];
    const worst = halvesAgainst(runReference(two, stackSamples([a, b]))[o], runReference(one, a)[o], runReference(one, b)[o]);
    expect(Math.max(...worst), `${precision}: ${worst}`).toBeLessThan(precision === 'fp32' ? 1e-6 : 1e-3);
  });

  it('names the input that does not lead with a batch of 1, and rejects a bad count', () => {
    const g = load('qwen_image');
    expect(() => rebatch(rebatch(g, 2), 2)).toThrow(/leading batch dim of 1.*'hidden_states' bfloat16\[2,|'hidden_states' float32\[2,/);
    expect(() => rebatch(g, 0)).toThrow(/--batch.*positive integer/);
    expect(rebatch(g, 1)).toBe(g);
    const rank0 = { ...g, types: new Map(g.types).set(g.inputs[0], { kind: 'tensor' as const, dtype: 'float32' as const, shape: [] }) };
    expect(() => rebatch(rank0, 2)).toThrow(new RegExp(`'${g.inputs[0]}'`));
  });

  it('npx compile --batch: a bad value is a one-line error with exit 1', async () => {
    const { codes, errors } = await compileCli([`${tinyDir('qwen_image')}/model.onnx`, '--batch', 'two', '--no-build']);
    expect(codes).toEqual([1]);
    expect(errors.join('\n')).toMatch(/--batch.*positive integer.*'two'/);
  });
});
