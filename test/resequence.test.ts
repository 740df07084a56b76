/**
 * Text-length re-specialisation (compiler/ir/resequence.ts, `npx compile --text-length T`): the tiny
 * Qwen-Image export (24 text tokens, static) run at a shorter or longer text gives the image tokens
 * the export gives the same prompt padded and masked to 24 — on the graph as exported and after the
 * fp8 pass pipeline (the fused joint attention keeps its two segments) — and bad requests are refused.
 * On an export with a symbolic text dim, compileModel's textLength binds it, over a shape binding.
 */
import { describe, expect, it } from 'vitest';
import type { Graph, TensorType } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { resequence } from '../compiler/ir/resequence.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { runReference } from '../compiler/exec/reference.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { fixtureInputs, normal, rng, tinyDir } from './helpers/fixtures.ts';
import { compileCli } from './helpers/cli.ts';
import { compileModel } from '../compiler/compile.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';

const load = (name: string) => importOnnx(`${tinyDir(name)}/model.onnx`).graph;
const S0 = 24, WIDTH = 192;

/** The fixture's inputs with `valid` real text tokens, laid out over `length` rows: rows past `valid` hold garbage and mask 0. */
function textOf(valid: number, length: number): Record<string, Tensor> {
  const base = fixtureInputs('qwen_image'), rand = rng(11);
  const real = base.encoder_hidden_states.toNumbers();
  const embeds = new Float32Array(length * WIDTH), mask = new BigInt64Array(length);
  for (let r = 0; r < length; r++) {
    mask[r] = r < valid ? 1n : 0n;
    for (let c = 0; c < WIDTH; c++) embeds[r * WIDTH + c] = r < valid ? real[(r % S0) * WIDTH + c] : 40 * normal(rand);
  }
  return { ...base, encoder_hidden_states: new Tensor('float32', [1, length, WIDTH], embeds), encoder_hidden_states_mask: new Tensor('int64', [1, length], mask) };
}

/** Largest |a - b| relative to b's largest magnitude. */
function relMax(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  const x = a.toNumbers(), y = b.toNumbers();
  let worst = 0, scale = 1e-30;
  for (let i = 0; i < y.length; i++) { worst = Math.max(worst, Math.abs(x[i] - y[i])); scale = Math.max(scale, Math.abs(y[i])); }
  return worst / scale;
}

const run = (g: Graph, inputs: Record<string, Tensor>) => Object.values(runReference(inferTypes(g).graph, inputs))[0];
const fused = (g: Graph) => runPipeline(inferTypes(g), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;

describe('resequence', () => {
  const g = load('qwen_image');

  it.each([[9, 16], [16, 16], [9, 40]])('%i real tokens at text length %i: the image tokens the export gives them padded to 24 (graph as exported)', (valid, length) => {
    const short = resequence(g, length);
    for (const name of ['encoder_hidden_states', 'encoder_hidden_states_mask']) expect((short.types.get(name) as TensorType).shape[1]).toBe(length);
    const want = run(g, textOf(valid, S0)), got = run(short, textOf(valid, length));
    expect(relMax(got, want)).toBeLessThan(1e-6);
    // and the text matters: another prompt moves the output (the check above is not vacuous)
    expect(relMax(run(short, textOf(valid - 3, length)), want)).toBeGreaterThan(1e-4);
  });

  it('after the fp8 pass pipeline: the joint attention still packs two segments, text of 16 + 256 image tokens; same output as padded to 24 within fp8 noise', () => {
    const short = fused(resequence(g, 16)), full = fused(g);
    const attention = (x: Graph) => x.nodes.filter((n) => n.domain === 'dc' && (n.op === 'FusedAttention' || n.op === 'PackedAttention' || n.op === 'AttentionPack'));
    expect(attention(short).length).toBe(attention(full).length);
    expect(attention(short).length).toBeGreaterThan(0);
    expect(short.nodes.length).toBe(full.nodes.length);
    const shapes = (x: Graph) => attention(x).map((n) => (x.types.get(n.outputs[0]) as TensorType).shape.join('x'));
    expect(shapes(short).every((s) => !s.includes(String(S0 + 256)))).toBe(true);
    const want = Object.values(runReference(full, textOf(12, S0)))[0], got = Object.values(runReference(short, textOf(12, 16)))[0];
    expect(relMax(got, want)).toBeLessThan(1e-4);
  });

  it('refuses what it cannot re-specialise, naming it', () => {
    expect(() => resequence(g, 0)).toThrow(/--text-length.*expected a positive integer/);
    expect(() => resequence(load('qwen_image_vae_decoder'), 16)).toThrow(/expected a graph input 'encoder_hidden_states'/);
    expect(resequence(g, S0)).toBe(g);
    // The text RoPE table (pos_freqs, 4096 rows) is sliced from row 8 (past the image's positions): a text of 5000 is refused at that slice, not at a Mul downstream.
    expect(() => resequence(g, 5000)).toThrow(/Slice node .*--text-length 5000.*expected a text table of at least 5008 rows \(this slice starts at row 8\), found 4096 rows/);
  });

  it('compileModel textLength binds a symbolic text dim, over a shape binding of it (a pipeline\'s shapes: Flux.2\'s txt_tokens 512)', async () => {
    const { onnx } = onnxProto;
    const dims = (...d: (number | string)[]) => ({ dim: d.map((x) => (typeof x === 'number' ? { dimValue: x } : { dimParam: x })) });
    const model = onnx.ModelProto.encode({
      irVersion: 8, opsetImport: [{ domain: '', version: 18 }],
      graph: {
        name: 'text', node: [{ opType: 'Relu', input: ['encoder_hidden_states'], output: ['y'], name: 'relu' }],
        input: [{ name: 'encoder_hidden_states', type: { tensorType: { elemType: 1, shape: dims(1, 'txt_tokens', 4) } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: dims(1, 'txt_tokens', 4) } } }],
      },
    }).finish();
    const dir = mkdtempSync(join(tmpdir(), 'text-dim-'));
    writeFileSync(join(dir, 'model.onnx'), model);
    const s = await compileModel({ model: join(dir, 'model.onnx'), shape: { txt_tokens: 512 }, textLength: 64, out: join(dir, 'out'), build: false });
    expect(s.shapes.encoder_hidden_states).toBe('float32[1,64,4]');
  });

  it('npx compile --text-length: a bad value is a one-line error with exit 1; with a pipeline it is refused', async () => {
    const { codes, errors } = await compileCli(
      [`${tinyDir('qwen_image')}/model.onnx`, '--text-length', '0', '--no-build'],
      ['models/qwen_image/tiny.pipeline.json', '--text-length', '16', '--no-build'],
    );
    expect(codes).toEqual([1, 1]);
    expect(errors.join('\n')).toMatch(/--text-length.*positive integer.*'0'/);
    expect(errors.join('\n')).toMatch(/--text-length.*applies to a whole pipeline/);
  });
});
