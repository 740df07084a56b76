/**
 * The full-size exports of the reference models, structure only (every initializer an external
 * reference to weights that are not there: compile them with `--synthetic-weights` on the GPU, or use
 * them for graph work at true scale). They are bundled brotli-compressed in models/full/<name>.onnx.br
 * (about 0.4 MB for the six) and read as ONNX from .cache/full-models/<bundle hash>/<name>/model.onnx,
 * decompressed there on first use (written beside, then renamed: never half a file).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { ROOT } from './paths.ts';

/** Each bundled export and the shape bindings it is compiled with (flux2_dev at 1024x1024: 4096 image tokens, text padded to 512). */
export const FULL_MODELS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  flux2_dev: { img_tokens: 4096, txt_tokens: 512 },
  qwen_image: {},
  flux2_vae_decoder: {},
  qwen_image_vae_decoder: {},
  mistral_small_3_1_text_encoder: {},
  qwen2_5_vl_7b_text_encoder: {},
};

const BUNDLE = join(ROOT, 'models', 'full');
let materialised: string | undefined;

/** A folder holding <name>/model.onnx for every bundled export. */
export function fullModelsDir(): string {
  if (materialised) return materialised;
  const names = Object.keys(FULL_MODELS);
  const packed = names.map((n) => readFileSync(join(BUNDLE, `${n}.onnx.br`)));
  const hash = createHash('sha256');
  packed.forEach((b) => hash.update(b));
  const dir = join(ROOT, '.cache', 'full-models', hash.digest('hex').slice(0, 16));
  names.forEach((name, i) => {
    const file = join(dir, name, 'model.onnx');
    if (existsSync(file)) return;
    mkdirSync(join(dir, name), { recursive: true });
    const part = `${file}.${process.pid}.partial`;
    writeFileSync(part, brotliDecompressSync(packed[i]));
    renameSync(part, file);
  });
  materialised = dir;
  return dir;
}

/** The ONNX file of one bundled export. */
export function fullModelPath(name: string): string {
  if (!Object.hasOwn(FULL_MODELS, name)) throw new Error(`no bundled full-size export '${name}' (bundled: ${Object.keys(FULL_MODELS).join(', ')})`);
  return join(fullModelsDir(), name, 'model.onnx');
}

/**
 * The file a `bundled:NAME` spec names (how a compile's model argument and a pipeline description's
 * graphs name these exports), or undefined for any other spec; an unknown NAME goes to `bad` with
 * what was expected, for the caller's own error.
 */
export function bundledSpecPath(spec: string, bad: (expected: string, name: string) => never): string | undefined {
  const m = /^bundled:(.*)$/.exec(spec);
  if (!m) return undefined;
  if (!Object.hasOwn(FULL_MODELS, m[1])) bad(`bundled:NAME with NAME one of ${Object.keys(FULL_MODELS).join(', ')}`, m[1]);
  return fullModelPath(m[1]);
}
