/**
 * Pipeline manifest: one JSON file that says which graphs, tokenizer and settings make a text-to-
 * image pipeline. `models/<family>/tiny.pipeline.json` describes the bundled tiny models; a
 * compiled ARTIFACT folder will hold the same file as `pipeline.json`, written by the compiler.
 * Paths are relative to the manifest's folder. The format is documented in runtime/pipeline/README.md.
 *
 * This module only parses and checks the shape of the file (every error names the manifest and
 * the key); the family loaders check it against the graphs' actual inputs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Size } from './types.ts';

export const MANIFEST_FORMAT = 'pipeline/1';
export const FAMILIES = ['flux2', 'qwen_image'] as const;
export type Family = (typeof FAMILIES)[number];

export interface PipelineManifest {
  format: typeof MANIFEST_FORMAT;
  family: Family;
  name: string;
  /** Absolute paths after loading. */
  tokenizer: string;
  graphs: { textEncoder: string; transformer: string; vaeDecoder: string };
  sizes: Size[];
  /** Image pixels per VAE latent pixel (8 for the real VAEs, 2 for the tiny ones). */
  vaeScaleFactor: number;
  defaults: { steps: number; guidanceScale: number };
  /** Family-specific prompt settings (see the family's prompt.ts). */
  prompt: Record<string, unknown>;
  /** Family-specific VAE settings (see the family's pipeline.ts). */
  vae: Record<string, unknown>;
  /** Plain-text notes on what differs from the real pipeline (tiny models only). */
  adaptations: string[];
  /** Where the manifest was read from. */
  path: string;
}

export class ManifestError extends Error {}

/** Reads `path` (a manifest file, or a folder holding pipeline.json). */
export function loadManifest(path: string): PipelineManifest {
  let file = resolve(path);
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'pipeline.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ManifestError(`${file}: expected a pipeline manifest (JSON), found ${(e as Error).message}`);
  }
  const bad = (key: string, expected: string, found: unknown): never => {
    throw new ManifestError(`${file}: '${key}' should be ${expected}, found ${JSON.stringify(found)}`);
  };
  const obj = (v: unknown, key: string) => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : bad(key, 'an object', v));
  const str = (v: unknown, key: string) => (typeof v === 'string' && v ? v : bad(key, 'a non-empty string', v));
  const num = (v: unknown, key: string, min: number) => (typeof v === 'number' && Number.isFinite(v) && v >= min ? v : bad(key, `a number >= ${min}`, v));
  const dir = dirname(file);
  const file_ = (v: unknown, key: string) => {
    const p = resolve(dir, str(v, key));
    if (!existsSync(p)) bad(key, 'a path to an existing file (relative to the manifest)', v);
    return p;
  };

  if (raw.format !== MANIFEST_FORMAT) bad('format', `"${MANIFEST_FORMAT}"`, raw.format);
  const family = raw.family as Family;
  if (!FAMILIES.includes(family)) bad('family', `one of ${FAMILIES.join(', ')}`, raw.family);
  const graphs = obj(raw.graphs, 'graphs');
  const sizes = Array.isArray(raw.sizes) && raw.sizes.length ? raw.sizes.map((s, i) => parseSize(s) ?? bad(`sizes[${i}]`, 'a "WxH" string', s)) : bad('sizes', 'a non-empty list of "WxH"', raw.sizes);
  const vaeScaleFactor = num(raw.vaeScaleFactor, 'vaeScaleFactor', 1);
  for (const [i, s] of sizes.entries()) {
    const unit = 2 * vaeScaleFactor;
    if (s.width % unit || s.height % unit) bad(`sizes[${i}]`, `multiples of ${unit} (2 x vaeScaleFactor)`, raw.sizes);
  }
  const defaults = obj(raw.defaults, 'defaults');
  return {
    format: MANIFEST_FORMAT, family, name: str(raw.name, 'name'), path: file,
    tokenizer: file_(raw.tokenizer, 'tokenizer'),
    graphs: {
      textEncoder: file_(graphs.textEncoder, 'graphs.textEncoder'),
      transformer: file_(graphs.transformer, 'graphs.transformer'),
      vaeDecoder: file_(graphs.vaeDecoder, 'graphs.vaeDecoder'),
    },
    sizes, vaeScaleFactor,
    defaults: { steps: num(defaults.steps, 'defaults.steps', 1), guidanceScale: num(defaults.guidanceScale, 'defaults.guidanceScale', 0) },
    prompt: raw.prompt === undefined ? {} : obj(raw.prompt, 'prompt'),
    vae: raw.vae === undefined ? {} : obj(raw.vae, 'vae'),
    adaptations: Array.isArray(raw.adaptations) ? raw.adaptations.map(String) : [],
  };
}

/** "1024x1024" -> {width, height}; undefined when malformed or not positive. */
export function parseSize(s: unknown): Size | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^([1-9]\d{0,4})x([1-9]\d{0,4})$/.exec(s);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : undefined;
}
