/**
 * Flux.2 prompt encoding (PIPELINE.md §1): "[IMG]" removed, Mistral chat template with the system
 * message, tokenised with no extra special tokens (BOS is in the text), truncated on the right to
 * L = max_sequence_length, LEFT-padded to L with <pad>, run through the text encoder; its output
 * (the stacked hidden states of the selected layers, done inside the graph) is prompt_embeds
 * [L, D], handed to the transformer as the encoder gave it (on the GPU bfloat16 bits left in the
 * encoder's memory and copied there into the transformer's: no host copy, no conversion). No mask
 * is kept (the transformer attends to every position, pads included).
 *
 * Encoder wider than L (only the tiny models: encoder 64, transformer 32): the ids are left-padded
 * further to the encoder's length and the last L rows are kept. With left padding the real tokens
 * sit at the end either way; RoPE is relative and fully-masked pad rows get a zero attention
 * output, so those L rows equal an L-long run (checked in test/pipeline/prompt.test.ts). With a
 * full-size encoder (512 = L) this is the plain call.
 */
import { Tensor } from '../../compiler/ir/tensor.ts';
import { bitsTensor, isBits, valuesOf } from '../../runtime/executor/bf16.ts';
import type { Executor } from '../../runtime/executor/types.ts';
import type { TextTokenizer } from '../../runtime/pipeline/tokenizer.ts';

/** diffusers' / BFL's SYSTEM_MESSAGE: a newline (not a space) between "object" and "attribution". */
export const SYSTEM_MESSAGE =
  'You are an AI that reasons about image descriptions. You give structured responses focusing on object relationships, object\nattribution and actions without speculation.';

export const MAX_SEQUENCE_LENGTH = 512;

export function cleanPrompt(prompt: string): string {
  return prompt.split('[IMG]').join('');
}

export function renderTemplate(prompt: string, systemMessage = SYSTEM_MESSAGE): string {
  return `<s>[SYSTEM_PROMPT]${systemMessage}[/SYSTEM_PROMPT][INST]${prompt}[/INST]`;
}

export interface TokenizedPrompt { ids: number[]; mask: number[] }

/** Template -> ids, right-truncated and left-padded to `length`. */
export function tokenizePrompt(tok: TextTokenizer, prompt: string, length: number, systemMessage = SYSTEM_MESSAGE): TokenizedPrompt {
  const real = tok.encode(renderTemplate(cleanPrompt(prompt), systemMessage), false).slice(0, length);
  const pad = tok.idOf('<pad>');
  const n = length - real.length;
  return { ids: [...new Array<number>(n).fill(pad), ...real], mask: [...new Array<number>(n).fill(0), ...real.map(() => 1)] };
}

export interface PromptEmbeds {
  /**
   * prompt_embeds [1, length, D] as the transformer takes it: the encoder output's last `length`
   * rows, not a copy — a bits tensor from the GPU executor (runtime/executor/bf16.ts: staged into
   * the transformer as it is; at full size left on the device, RunOptions.outputsOnDevice, and valid
   * until the encoder runs again), float32 from the CPU one.
   */
  tensor: Tensor;
  width: number;
  /** The values [length, D] as float32 (decoded when `tensor` holds bits). */
  readonly embeds: Float32Array;
}

/** prompt_embeds [length, D] from the text encoder graph (inputs input_ids, attention_mask). */
export async function encodePrompt(
  encoder: Executor, tok: TextTokenizer, prompt: string, length: number, encoderLength: number, systemMessage = SYSTEM_MESSAGE,
): Promise<PromptEmbeds> {
  if (encoderLength < length) throw new Error(`${encoder.description}: text encoder takes ${encoderLength} tokens, fewer than the transformer's ${length}`);
  const wide = tokenizePrompt(tok, prompt, length, systemMessage);
  const extra = encoderLength - length;
  const ids = new BigInt64Array(encoderLength).fill(BigInt(tok.idOf('<pad>')));
  const mask = new BigInt64Array(encoderLength);
  for (let i = 0; i < length; i++) {
    ids[extra + i] = BigInt(wide.ids[i]);
    mask[extra + i] = BigInt(wide.mask[i]);
  }
  // Left on the device where the executor can: the transformer takes them from there (RunOptions.outputsOnDevice).
  const out = await encoder.run({
    input_ids: new Tensor('int64', [1, encoderLength], ids),
    attention_mask: new Tensor('int64', [1, encoderLength], mask),
  }, { outputsOnDevice: true });
  const embeds = Object.values(out)[0];
  if (embeds.shape.length !== 3 || embeds.shape[1] !== encoderLength) {
    throw new Error(`${encoder.description}: expected prompt_embeds [1, ${encoderLength}, D], found [${embeds.shape}]`);
  }
  const width = embeds.shape[2];
  // The output itself where no rows are dropped (its values not read here: they may be on the device); else a view, not a copy.
  const tensor = extra === 0 ? embeds : isBits(embeds)
    ? bitsTensor([1, length, width], embeds.data.subarray(extra * width))
    : new Tensor('float32', [1, length, width], embeds.toFloat32().subarray(extra * width));
  return { tensor, width, get embeds() { return valuesOf(tensor); } };
}
