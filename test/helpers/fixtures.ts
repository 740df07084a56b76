/**
 * Test helpers for the bundled tiny fixtures (models/tiny/<name>): their paths, their inputs,
 * fresh seeded random inputs shaped like them, and running a model in onnxruntime-node.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ROOT } from '../../compiler/compile.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { readNpy } from '../../compiler/npy.ts';

export const TINY = ['flux2', 'flux2_opset23', 'qwen_image', 'flux2_vae_decoder', 'qwen_image_vae_decoder', 'mistral_text_encoder', 'qwen_text_encoder'] as const;
export const tinyDir = (name: string) => join(ROOT, 'models', 'tiny', name);

export function fixtureInputs(name: string): Record<string, Tensor> {
  const dir = tinyDir(name);
  const out: Record<string, Tensor> = {};
  for (const f of readdirSync(dir)) if (f.startsWith('input_')) out[f.slice('input_'.length, -'.npy'.length)] = readNpy(join(dir, f));
  return out;
}

/** mulberry32: a small seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

/**
 * Fresh inputs shaped like a fixture's: float tensors ~ N(0, std of the fixture tensor), float
 * scalars jittered around the fixture value; masks get a random padding length (at least one
 * token kept); other integer tensors (ids) random in the fixture's own value range.
 */
export function randomInputsLike(name: string, seed: number): Record<string, Tensor> {
  const rand = rng(seed);
  const out: Record<string, Tensor> = {};
  for (const [input, t] of Object.entries(fixtureInputs(name))) {
    const vals = t.toNumbers();
    const y = Tensor.zeros(t.dtype, t.shape);
    if (t.dtype.startsWith('float')) {
      if (t.size === 1) y.set(0, vals[0] * (0.5 + rand()));
      else {
        const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
        const std = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length) || 1;
        for (let i = 0; i < y.size; i++) y.set(i, normal(rand) * std);
      }
    } else if (input.includes('mask')) {
      const row = t.shape[t.shape.length - 1];
      const keep = 1 + Math.floor(rand() * row);
      for (let i = 0; i < y.size; i++) y.set(i, i % row < keep ? 1 : 0);
    } else if (input.endsWith('_ids') && t.shape.length === 3) {
      (y.data as BigInt64Array).set(t.data as BigInt64Array); // positional ids (img_ids/txt_ids) define the layout: keep them
    } else {
      const lo = Math.min(...vals), hi = Math.max(...vals);
      for (let i = 0; i < y.size; i++) y.set(i, lo + Math.floor(rand() * (hi - lo + 1)));
    }
    out[input] = y;
  }
  return out;
}

export async function runOrt(modelPath: string, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await ort.InferenceSession.create(modelPath);
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(inputs)) {
    const type = t.dtype === 'float32' ? 'float32' : t.dtype === 'int64' ? 'int64' : t.dtype === 'bool' ? 'bool' : undefined;
    if (!type) throw new Error(`runOrt: unsupported input dtype ${t.dtype}`);
    feeds[k] = new ort.Tensor(type, t.data as Float32Array, t.shape as number[]);
  }
  const results = await session.run(feeds);
  await session.release();
  const out: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(results)) {
    out[k] = new Tensor(v.type === 'float32' ? 'float32' : v.type === 'int64' ? 'int64' : 'bool', v.dims as number[], v.data as Float32Array);
  }
  return out;
}
