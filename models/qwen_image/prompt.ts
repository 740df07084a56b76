/**
 * Qwen-Image prompt encoding (PIPELINE.md §1): the prompt is substituted verbatim into the chat
 * template, tokenised (add_special_tokens on, which adds nothing for Qwen2's tokenizer), run
 * through the text encoder (last hidden state, post-norm, done inside the graph); then the
 * masked-in rows are kept, the first `dropTokens` of them (the template prefix: 34 with the real
 * tokenizer, a literal in diffusers) are dropped, and the rest (prompt + 5 suffix tokens) is
 * truncated to max_sequence_length (512).
 *
 * Static graphs: a text encoder exported at a fixed length E (full: 290 = 34 + 256; tiny: 48) gets
 * the ids truncated on the right to E (diffusers' limit is 1058) and RIGHT-padded to E with mask
 * 0: causal attention keeps real rows independent of what follows, and the padded rows are
 * dropped by the mask selection, so this equals the unpadded call. A transformer exported with a
 * fixed text length T (full: 256; tiny: 24) gets the kept rows zero-padded to T with an
 * encoder_hidden_states_mask of 0 there — equivalent to diffusers' unmasked call (PIPELINE.md §4),
 * and the way the two CFG passes, of different lengths, run on one static graph. Where the
 * transformer was also compiled for shorter texts (a pipeline's `textLengths`), the prompts of one
 * request take the shortest length that holds the longest of them (they run as one batch), so a short
 * prompt runs a short sequence, as diffusers runs the prompt's own length.
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import { bitsTensor, isBits, valuesOf } from '../../runtime/executor/bf16.ts';
import type { Executor } from '../../runtime/executor/types.ts';
import type { TextTokenizer } from '../../runtime/pipeline/tokenizer.ts';

export const PROMPT_TEMPLATE =
  '<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n';
/** diffusers' prompt_template_encode_start_idx (never recomputed from the tokenizer). */
export const DROP_TOKENS = 34;
export const MAX_SEQUENCE_LENGTH = 512;
/** diffusers' tokenizer max_length: 1024 + 34. */
export const TOKENIZER_MAX_LENGTH = 1058;

export interface QwenPromptSettings {
  template: string;
  /** A number, or 'prefix' = the token count of the template's part before '{}' (tiny manifests). */
  dropTokens: number | 'prefix';
  maxSequenceLength: number;
}

export const DEFAULT_SETTINGS: QwenPromptSettings = { template: PROMPT_TEMPLATE, dropTokens: DROP_TOKENS, maxSequenceLength: MAX_SEQUENCE_LENGTH };

export function renderTemplate(prompt: string, template = PROMPT_TEMPLATE): string {
  return template.replace('{}', () => prompt);
}

export function resolveDropTokens(tok: TextTokenizer, s: QwenPromptSettings): number {
  if (s.dropTokens !== 'prefix') return s.dropTokens;
  return tok.encode(s.template.slice(0, s.template.indexOf('{}')), true).length;
}

/** Ids of the rendered template, right-truncated to `maxLength` (no padding). */
export function tokenizePrompt(tok: TextTokenizer, prompt: string, template: string, maxLength: number): number[] {
  return tok.encode(renderTemplate(prompt, template), true).slice(0, Math.min(maxLength, TOKENIZER_MAX_LENGTH));
}

export interface EncodedText {
  /**
   * encoder_hidden_states [1, T, D] as the transformer takes it, rows past `length` 0: bfloat16
   * bits when the encoder gave bits (the GPU executor, runtime/executor/bf16.ts: the kept rows'
   * bits, 0 bits for the padding, which is +0.0 either way), else float32.
   */
  tensor: Tensor;
  /** The values [T, D] as float32 (decoded when `tensor` holds bits). */
  readonly embeds: Float32Array;
  /** [T] int64: 1 for the first `length` rows. */
  mask: BigInt64Array;
  /** Kept rows (prompt + suffix after the drop, truncated). */
  length: number;
  width: number;
}

/** `textLengths`: the text lengths the transformer takes, ascending (the last: the export's own). */
export async function encodePrompt(
  encoder: Executor, tok: TextTokenizer, prompt: string, s: QwenPromptSettings, drop: number, encoderLength: number, textLengths: readonly number[],
): Promise<EncodedText> {
  return (await encodePrompts(encoder, tok, [prompt], s, drop, encoderLength, textLengths))[0];
}

/** encodePrompt of each prompt, all at one text length; several at once where the encoder offers runMany (the prompt and the negative prompt of true CFG). */
export async function encodePrompts(
  encoder: Executor, tok: TextTokenizer, prompts: string[], s: QwenPromptSettings, drop: number, encoderLength: number, textLengths: readonly number[],
): Promise<EncodedText[]> {
  const pad = BigInt(tok.idOf('<|endoftext|>'));
  const asked = prompts.map((prompt) => {
    const real = tokenizePrompt(tok, prompt, s.template, encoderLength);
    const ids = new BigInt64Array(encoderLength).fill(pad);
    const mask = new BigInt64Array(encoderLength);
    real.forEach((id, i) => { ids[i] = BigInt(id); mask[i] = 1n; });
    return { real: real.length, inputs: { input_ids: new Tensor('int64', [1, encoderLength], ids), attention_mask: new Tensor('int64', [1, encoderLength], mask) } };
  });
  // run() is called before the first await, so an executor that launches and yields (the GPU one) starts now.
  let outs: Record<string, Tensor>[];
  if (asked.length > 1 && encoder.runMany) outs = await encoder.runMany(asked.map((a) => a.inputs));
  else {
    outs = [];
    for (const a of asked) outs.push(await encoder.run(a.inputs));
  }
  const longest = textLengths[textLengths.length - 1];
  const kept = asked.map((a) => Math.max(0, Math.min(a.real - drop, s.maxSequenceLength, longest)));
  const textLength = textLengths.find((n) => n >= Math.max(...kept))!;
  return outs.map((o, i) => keptRows(encoder, Object.values(o)[0], kept[i], drop, encoderLength, textLength));
}

/** The encoder's hidden states -> the `kept` rows the transformer keeps (after the dropped template prefix), padded to `textLength`, with their mask. */
function keptRows(encoder: Executor, out: Tensor, kept: number, drop: number, encoderLength: number, textLength: number): EncodedText {
  if (out.shape.length !== 3 || out.shape[1] !== encoderLength) {
    throw new Error(`${encoder.description}: expected hidden states [1, ${encoderLength}, D], found [${out.shape}]`);
  }
  const D = out.shape[2];
  let tensor: Tensor;
  if (isBits(out)) {
    const bits = new Uint16Array(textLength * D);
    bits.set(out.data.subarray(drop * D, (drop + kept) * D));
    tensor = bitsTensor([1, textLength, D], bits);
  } else {
    const embeds = new Float32Array(textLength * D);
    embeds.set(out.toFloat32().subarray(drop * D, (drop + kept) * D));
    tensor = new Tensor('float32', [1, textLength, D], embeds);
  }
  const textMask = new BigInt64Array(textLength);
  textMask.fill(1n, 0, kept);
  return { tensor, get embeds() { return valuesOf(tensor); }, mask: textMask, length: kept, width: D };
}
