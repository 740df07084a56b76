/**
 * Prompt encoding of both families on the tiny text encoders (CPU executor): the templates, the
 * padding sides, truncation, Qwen's prefix drop, and the tiny-only adaptation of Flux.2 (a 64-long
 * encoder feeding a 32-long transformer: ids left-padded to 64, last 32 rows kept) — justified
 * here by checking that real-token rows do not depend on their position (left vs right padding)
 * and that fully-masked pad rows do not either.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { SYSTEM_MESSAGE, cleanPrompt, encodePrompt, renderTemplate, tokenizePrompt } from '../../models/flux2/prompt.ts';
import * as qwen from '../../models/qwen_image/prompt.ts';
import { OrtExecutor } from '../../runtime/executor/ort.ts';
import { ROOT } from '../../runtime/paths.ts';
import { TextTokenizer } from '../../runtime/pipeline/tokenizer.ts';
import { relL2 } from '../helpers/numerics.ts';

const tiny = (name: string) => join(ROOT, 'models', 'tiny', name, 'model.onnx');
const tok = TextTokenizer.load(join(ROOT, 'models', 'tiny', 'tokenizer', 'tokenizer.json'));
let mistral: OrtExecutor, qwenEnc: OrtExecutor;
beforeAll(async () => { [mistral, qwenEnc] = await Promise.all([OrtExecutor.load(tiny('mistral_text_encoder')), OrtExecutor.load(tiny('qwen_text_encoder'))]); });
afterAll(async () => { await Promise.all([mistral.release(), qwenEnc.release()]); });

const rows = (t: Float32Array, from: number, to: number, D: number) => t.subarray(from * D, to * D);
async function runEncoder(e: OrtExecutor, ids: number[], mask: number[]): Promise<Float32Array> {
  const L = ids.length;
  const out = await e.run({ input_ids: new Tensor('int64', [1, L], BigInt64Array.from(ids, BigInt)), attention_mask: new Tensor('int64', [1, L], BigInt64Array.from(mask, BigInt)) });
  return Object.values(out)[0].data as Float32Array;
}

describe('Flux.2 prompt', () => {
  it('renders the Mistral template with the newline system message and drops [IMG]', () => {
    expect(SYSTEM_MESSAGE).toContain('object\nattribution');
    expect(renderTemplate('a fox', 'SYS')).toBe('<s>[SYSTEM_PROMPT]SYS[/SYSTEM_PROMPT][INST]a fox[/INST]');
    expect(cleanPrompt('a [IMG]fox[IMG]')).toBe('a fox');
    // PIPELINE.md §8: with the real system message the tiny tokenizer gives 99 tokens for this prompt
    expect(tok.encode(renderTemplate('a red fox jumps over the lazy dog'), false)).toHaveLength(99);
  });

  it('left-pads with <pad> to the length, BOS once, [/INST] last; truncates on the right', () => {
    const t = tokenizePrompt(tok, 'a red fox', 32, 'Describe the image.');
    expect(t.ids).toHaveLength(32);
    const first = t.mask.indexOf(1);
    expect(t.ids.slice(0, first).every((id) => id === tok.idOf('<pad>'))).toBe(true);
    expect(t.ids[first]).toBe(tok.idOf('<s>'));
    expect(t.ids.filter((id) => id === tok.idOf('<s>'))).toHaveLength(1);
    expect(t.ids[31]).toBe(tok.idOf('[/INST]'));
    expect(t.ids.slice(first)).toEqual(tok.encode(renderTemplate('a red fox', 'Describe the image.'), false));
    const long = tokenizePrompt(tok, 'a red fox '.repeat(20), 32, 'Describe the image.');
    expect(long.mask.every((m) => m === 1)).toBe(true);
    expect(long.ids[0]).toBe(tok.idOf('<s>'));
    expect(long.ids[31]).not.toBe(tok.idOf('[/INST]'));
  });

  it('real-token rows do not depend on position, pad rows are all equal (why last-32-of-64 = a 32 run)', async () => {
    const real = tok.encode(renderTemplate('a red fox', 'Describe the image.'), false);
    const K = real.length, pad = tok.idOf('<pad>'), D = 192;
    const left = await runEncoder(mistral, [...Array(64 - K).fill(pad), ...real], [...Array(64 - K).fill(0), ...Array(K).fill(1)]);
    const right = await runEncoder(mistral, [...real, ...Array(64 - K).fill(pad)], [...Array(K).fill(1), ...Array(64 - K).fill(0)]);
    expect(relL2(rows(left, 64 - K, 64, D), rows(right, 0, K, D))).toBeLessThan(1e-5);
    for (let r = 1; r < 64 - K; r++) expect(rows(left, r, r + 1, D)).toEqual(rows(left, 0, 1, D));
    expect(left.every(Number.isFinite)).toBe(true);
  });

  it('encodePrompt = the last 32 rows of the left-padded 64-token encoder run', async () => {
    const { embeds, width } = await encodePrompt(mistral, tok, 'a red fox', 32, 64, 'Describe the image.');
    expect(width).toBe(192);
    expect(embeds).toHaveLength(32 * 192);
    const t = tokenizePrompt(tok, 'a red fox', 32, 'Describe the image.');
    const full = await runEncoder(mistral, [...Array(32).fill(tok.idOf('<pad>')), ...t.ids], [...Array(32).fill(0), ...t.mask]);
    expect(embeds).toEqual(rows(full, 32, 64, 192));
    await expect(encodePrompt(mistral, tok, 'x', 128, 64)).rejects.toThrow(/takes 64 tokens, fewer than the transformer's 128/);
  });
});

describe('Qwen-Image prompt', () => {
  const TINY = '<|im_start|>system\nDescribe the image.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n';
  const settings: qwen.QwenPromptSettings = { template: TINY, dropTokens: 'prefix', maxSequenceLength: 512 };

  it('substitutes the prompt verbatim; real prefix 43 / suffix 12 tiny tokens (34 / 5 with the real tokenizer)', () => {
    expect(qwen.renderTemplate('$& {} x')).toContain('user\n$& {} x<|im_end|>');
    const [pre, post] = qwen.PROMPT_TEMPLATE.split('{}');
    expect(tok.encode(pre, true)).toHaveLength(43);
    expect(tok.encode(post, true)).toHaveLength(12);
    expect(qwen.DROP_TOKENS).toBe(34);
    expect(qwen.resolveDropTokens(tok, settings)).toBe(21);
    expect(qwen.resolveDropTokens(tok, qwen.DEFAULT_SETTINGS)).toBe(34);
  });

  it('keeps prompt + suffix rows after the drop, zero-pads to the transformer length with mask 0', async () => {
    const ids = tok.encode(qwen.renderTemplate('a red fox', TINY), true);
    const n = ids.length - 21;
    expect(n).toBe(3 + 12);
    const e = await qwen.encodePrompt(qwenEnc, tok, 'a red fox', settings, 21, 48, [24]);
    expect(e.length).toBe(n);
    expect(Array.from(e.mask, Number)).toEqual([...Array(n).fill(1), ...Array(24 - n).fill(0)]);
    const direct = await runEncoder(qwenEnc, [...ids, ...Array(48 - ids.length).fill(tok.idOf('<|endoftext|>'))], [...Array(ids.length).fill(1), ...Array(48 - ids.length).fill(0)]);
    expect(rows(e.embeds, 0, n, 192)).toEqual(rows(direct, 21, 21 + n, 192));
    expect(rows(e.embeds, n, 24, 192).every((v) => v === 0)).toBe(true);
  });

  it('with shorter text lengths (a pipeline\'s textLengths): the prompts of one request share the shortest length that holds the longest', async () => {
    const [fox, cat] = await qwen.encodePrompts(qwenEnc, tok, ['a red fox', ' '], settings, 21, 48, [8, 16, 24]);
    const full = await qwen.encodePrompt(qwenEnc, tok, 'a red fox', settings, 21, 48, [24]);
    expect([fox.length, cat.length, fox.mask.length, cat.mask.length, fox.tensor.shape]).toEqual([15, 13, 16, 16, [1, 16, 192]]);
    expect(Array.from(fox.mask, Number)).toEqual(Array.from(full.mask, Number).slice(0, 16));
    expect(fox.embeds).toEqual(full.embeds.subarray(0, 16 * 192)); // the same rows, less padding
    const [alone] = await qwen.encodePrompts(qwenEnc, tok, [' '], settings, 21, 48, [8, 14, 24]);
    expect(alone.mask.length).toBe(14);
  });

  it('right padding leaves the real rows unchanged (what makes the static 48-token encoder exact)', async () => {
    const ids = tok.encode(qwen.renderTemplate('a cat', TINY), true);
    const endo = tok.idOf('<|endoftext|>');
    const a = await runEncoder(qwenEnc, [...ids, ...Array(48 - ids.length).fill(endo)], [...Array(ids.length).fill(1), ...Array(48 - ids.length).fill(0)]);
    const b = await runEncoder(qwenEnc, [...ids, ...Array(48 - ids.length).fill(5)], [...Array(ids.length).fill(1), ...Array(48 - ids.length).fill(0)]);
    expect(rows(a, 0, ids.length, 192)).toEqual(rows(b, 0, ids.length, 192));
  });

  it('truncates to the transformer length (suffix lost for long prompts) and to the encoder length', async () => {
    const e = await qwen.encodePrompt(qwenEnc, tok, 'a red fox '.repeat(10), settings, 21, 48, [8, 16, 24]);
    expect(e.length).toBe(24);
    expect(Array.from(e.mask, Number).every((m) => m === 1)).toBe(true);
    expect(qwen.tokenizePrompt(tok, 'a red fox '.repeat(10), TINY, 48)).toHaveLength(48);
  });
});
