/**
 * Where each weight lives on the device, and how synthetic weights are drawn (pure: no driver).
 *
 * Layout: with weights.bin, the device copy is the file byte for byte (sections keep the file's
 * offsets, 256-byte aligned), so the upload is one streaming copy. A structure-only artifact has no
 * file: sections are placed one after another, 256-byte aligned, sized by kind:
 *   raw    data   dtype x elements          fp8   codes N·K bytes, scales N fp32
 *   bf16   codes  N·K bf16                   nvfp4 codes N·K/2, scales N·K/16 e4m3, global fp32
 *
 * Synthetic weights (--synthetic-weights SEED): every learned weight, and every one without bytes,
 * is drawn on the GPU by the support kernel dc_fill (uniform, seeded per section) so that a layer
 * keeps its activations' scale: a matrix with K inputs gets values of variance 1/K (fp8: codes
 * uniform over +-448 and a scale of sqrt(3/K)/448 per channel); a vector named like a norm weight
 * gets 1 +- 0.1, any other vector (biases) +- 0.02; integer weights are zero.
 */
import { fail } from '../../compiler/errors.ts';
import { type DType, bytesFor } from '../../compiler/ir/dtype.ts';
import type { Section, WeightEntry } from '../../compiler/weights-file.ts';
import { numel } from './artifact.ts';

const ALIGN = 256;
const roundUp = (v: number) => Math.ceil(v / ALIGN) * ALIGN;

/** Bytes of each section of an entry, by kind. */
export function sectionBytes(t: WeightEntry): Record<string, number> {
  const [n, k] = t.shape;
  switch (t.kind) {
    case 'raw': return { data: bytesFor(t.dtype as DType, numel(t.shape)) };
    case 'fp8': return { codes: n * k, scales: 4 * n };
    case 'bf16': return { codes: 2 * n * k };
    case 'nvfp4': return { codes: (n * k) / 2, scales: (n * k) / 16, global: 4 };
  }
}

export interface DeviceLayout {
  bytes: number;
  /** Sections of each entry, by entry name. */
  sections: Map<string, Record<string, Section>>;
}

/** The device layout: the file's when there is one, else sections placed in order. */
export function deviceLayout(tensors: WeightEntry[], fileBytes: number | null): DeviceLayout {
  const sections = new Map<string, Record<string, Section>>();
  if (fileBytes !== null) {
    for (const t of tensors) sections.set(t.name, t.sections);
    return { bytes: fileBytes, sections };
  }
  let end = 0;
  for (const t of tensors) {
    const placed: Record<string, Section> = {};
    for (const [name, length] of Object.entries(sectionBytes(t))) {
      placed[name] = { offset: roundUp(end), length };
      end = placed[name].offset + length;
    }
    sections.set(t.name, placed);
  }
  return { bytes: roundUp(end), sections };
}

/** dc_fill's element kinds (runtime/gpu/support.cu). */
export const FILL_KIND: Partial<Record<DType, number>> = { float32: 0, bfloat16: 1, float16: 2, float8e4m3fn: 3 };
export const FILL_ZERO = 4;

export interface Fill { entry: string; section: string; offset: number; count: number; kind: number; scale: number; offset0: number; seed: number }

/** A 32-bit seed per (seed, entry index, section index). */
const mix = (seed: number, i: number, s: number) => (Math.imul(seed ^ 0x5bd1e995, 0x9E3779B1) + Math.imul(i + 1, 0x85EBCA6B) + Math.imul(s + 1, 0xC2B2AE35)) >>> 0;

/** Whether an entry is replaced by synthetic weights: learned, or without bytes. */
export const isSynthetic = (t: WeightEntry, fileBytes: number | null) => t.learned || (fileBytes === null && !t.data);

/**
 * The fills that draw every synthetic weight. `fanIn(name)` gives a raw matrix's K (from the GEMM
 * that reads it); quantized entries are [N, K] by layout.
 */
export function syntheticFills(tensors: WeightEntry[], layout: DeviceLayout, seed: number, fileBytes: number | null, fanIn: (name: string) => number | undefined): Fill[] {
  const fills: Fill[] = [];
  tensors.forEach((t, i) => {
    if (!isSynthetic(t, fileBytes)) return;
    const sections = layout.sections.get(t.name)!;
    const add = (section: string, count: number, kind: number, scale: number, offset0: number) =>
      fills.push({ entry: t.name, section, offset: sections[section].offset, count, kind, scale, offset0, seed: mix(seed, i, Object.keys(sections).indexOf(section)) });
    const [n, k] = t.shape;
    if (t.kind === 'fp8') {
      add('codes', n * k, FILL_KIND.float8e4m3fn!, 448, 0);
      add('scales', n, FILL_KIND.float32!, 0, Math.sqrt(3 / k) / 448);
    } else if (t.kind === 'bf16') {
      add('codes', n * k, FILL_KIND.bfloat16!, Math.sqrt(3 / k), 0);
    } else if (t.kind === 'nvfp4') {
      fail(`weight '${t.name}'`, 'a weight format --synthetic-weights draws (fp8, bf16, raw)', 'nvfp4');
    } else {
      const kind = FILL_KIND[t.dtype as DType];
      const count = numel(t.shape);
      if (kind === undefined) add('data', sections.data.length, FILL_ZERO, 0, 0);
      else if (t.shape.length >= 2) add('data', count, kind, Math.sqrt(3 / (fanIn(t.name) ?? t.shape.at(-1)!)), 0);
      else if (/norm/i.test(t.name)) add('data', count, kind, 0.1, 1);
      else add('data', count, kind, 0.02, 0);
    }
  });
  return fills;
}
