/**
 * Tokenizer: a model's own HF `tokenizer.json`, loaded from a local file (never the network) with
 * @huggingface/tokenizers (pure JS; byte-level BPE, added/special tokens, pre-tokenizer regexes as
 * the Rust crate runs them). Special-token strings inside the text (`<s>`, `[INST]`,
 * `<|im_start|>` ...) become their single ids, as in transformers.
 *
 * `addSpecialTokens` mirrors transformers' flag: Flux.2's processor renders BOS into the text and
 * tokenises with it off; Qwen's tokenizer call leaves it on (its post-processor adds nothing).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

export class TextTokenizer {
  private constructor(private readonly tok: Tokenizer, readonly path: string) {}

  static load(path: string): TextTokenizer {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`${path}: expected a readable tokenizer.json, found ${(e as Error).message}`);
    }
    // tokenizer_config.json beside it (optional) carries flags such as clean-up of spaces.
    const configPath = join(dirname(path), 'tokenizer_config.json');
    const config: unknown = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
    return new TextTokenizer(new Tokenizer(json as object, config as object), path);
  }

  encode(text: string, addSpecialTokens: boolean): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: false });
  }

  /** Id of a token string (special or vocabulary), or an error naming the tokenizer file. */
  idOf(token: string): number {
    const id = this.tok.token_to_id(token);
    if (id === undefined) throw new Error(`${this.path}: expected a token '${token}', found none`);
    return id;
  }
}
