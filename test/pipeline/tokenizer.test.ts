/**
 * The tokenizer (runtime/pipeline/tokenizer.ts over @huggingface/tokenizers) against ids derived
 * independently from the bundled tokenizer.json: special tokens from its added_tokens table, and
 * words re-tokenised here by a plain byte-level BPE (apply the lowest-ranked merge until none
 * applies) over its vocab and merges. Offline: the file is local.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../runtime/paths.ts';
import { TextTokenizer } from '../../runtime/pipeline/tokenizer.ts';

const PATH = join(ROOT, 'models', 'tiny', 'tokenizer', 'tokenizer.json');
const json = JSON.parse(readFileSync(PATH, 'utf8')) as {
  added_tokens: { id: number; content: string }[];
  model: { vocab: Record<string, number>; merges: ([string, string] | string)[] };
};
const tok = TextTokenizer.load(PATH);

/** Reference BPE for one ASCII pre-token ("Ġ" stands for a leading space, as in GPT-2's byte map). */
function referenceBpe(word: string): number[] {
  const ranks = new Map(json.model.merges.map((m, i) => [Array.isArray(m) ? m.join(' ') : m, i]));
  let parts = [...word.replace(/^ /, 'Ġ')];
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) { best = i; bestRank = r; }
    }
    if (best < 0) break;
    parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
  }
  return parts.map((p) => json.model.vocab[p]);
}

describe('tokenizer.json (tiny)', () => {
  it('maps every special token to its added_tokens id, as one token, inside text', () => {
    for (const { id, content } of json.added_tokens) {
      expect(tok.idOf(content)).toBe(id);
      expect(tok.encode(`a${content}b`, false)).toEqual([...referenceBpe('a'), id, ...referenceBpe('b')]);
    }
    expect(tok.idOf('<s>')).toBe(0);
    expect(tok.idOf('[INST]')).toBe(3);
    expect(tok.idOf('<|im_start|>')).toBe(7);
  });

  it('byte-level BPE of words equals the reference merge loop', () => {
    for (const word of ['fox', ' fox', ' the', ' lazy', 'hello', ' jumps', 'Describe', ' zebra']) {
      expect(tok.encode(word, false), word).toEqual(referenceBpe(word));
    }
  });

  it('a sentence is the concatenation of its space-prefixed words', () => {
    const words = ['a', ' red', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog'];
    expect(tok.encode(words.join(''), false)).toEqual(words.flatMap(referenceBpe));
    expect(tok.encode(words.join(''), false)).toEqual(tok.encode(words.join(''), true)); // no post-processor
  });

  it('newline and punctuation are byte-mapped (\\n -> Ċ)', () => {
    expect(tok.encode('\n', false)).toEqual([json.model.vocab['Ċ']]);
    expect(tok.decode(tok.encode('a red fox.\nok', false))).toBe('a red fox.\nok');
  });
});
