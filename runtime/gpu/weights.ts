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
 *
 * dcHash / fillValue / fillStored mirror dc_fill on the CPU (the reference for the PyTorch copy in
 * bench/gpu/same_weights.py): element i of a section of n gets u = (hash(i', seed) >> 8) * 2^-23 - 1
 * (i' = low 32 bits of i XOR high 32 bits x 0x27D4EB2D), v = fma(u, scale, offset) in float32
 * (nvcc contracts offset + scale * u; scale and offset arrive as float32), then v rounded to the
 * element type (bf16 / f16 to nearest even, e4m3 to nearest even and saturated to +-448).
 * fillPlan() lists every fill of an artifact with each entry's provenance (run-cli --synthetic-fills).
 */
import { fail } from '../../compiler/errors.ts';
import { type DType, bytesFor, f32ToBf16 } from '../../compiler/ir/dtype.ts';
import { encodeE4M3 } from '../../compiler/quant/formats.ts';
import type { Section, WeightEntry, WeightSource } from '../../compiler/weights-file.ts';
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

/** One host-to-device copy of a model's own bytes: a section of an entry, from its inline bytes or a range of weights.bin. */
export interface HostCopy { entry: WeightEntry; section: string; to: Section; from: Section | 'inline' }

/**
 * What a model copies entry by entry when it does not upload weights.bin whole (synthetic weights, or
 * a module over another's weights: `own` is then its own entries): every section of each entry that is
 * not drawn (with synthetic weights: isSynthetic), from its inline bytes or its range of the file —
 * quantized entries too (a weight of the graph's own constants, quantized at compile time; a learned
 * one the donor lacks).
 */
export function hostCopies(own: readonly WeightEntry[], layout: DeviceLayout, synthetic: boolean, fileBytes: number | null): HostCopy[] {
  const copies: HostCopy[] = [];
  for (const t of own) {
    if (synthetic && isSynthetic(t, fileBytes)) continue;
    for (const [section, to] of Object.entries(layout.sections.get(t.name)!)) {
      const from = t.data !== undefined ? 'inline' : fileBytes !== null ? t.sections[section] : undefined;
      copies.push({ entry: t, section, to, from: from ?? fail(`weight '${t.name}'`, `the bytes of its '${section}' section (inline, or in weights.bin)`, 'none (a structure-only artifact runs with --synthetic-weights)') });
    }
  }
  return copies;
}

/** dc_fill's element kinds (runtime/gpu/support.cu). */
export const FILL_KIND: Partial<Record<DType, number>> = { float32: 0, bfloat16: 1, float16: 2, float8e4m3fn: 3 };
export const FILL_ZERO = 4;

export interface Fill { entry: string; section: string; offset: number; count: number; kind: number; scale: number; offset0: number; seed: number }

/** FNV-1a of an entry's name. */
const nameHash = (name: string) => {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
};
/** A 32-bit seed per (seed, entry name, section index). */
const mix = (seed: number, name: string, s: number) => (Math.imul(seed ^ 0x5bd1e995, 0x9E3779B1) + Math.imul(nameHash(name) + 1, 0x85EBCA6B) + Math.imul(s + 1, 0xC2B2AE35)) >>> 0;

/** Whether an entry is replaced by synthetic weights: learned, or without bytes. */
export const isSynthetic = (t: WeightEntry, fileBytes: number | null) => t.learned || (fileBytes === null && !t.data);

/**
 * The fills that draw every synthetic weight. `fanIn(name)` gives a raw matrix's K (from the GEMM
 * that reads it); quantized entries are [N, K] by layout. Each entry's seed mixes its name, so an
 * entry is drawn alike in any artifact of the model: compiled with its launches in another order
 * (the weights listed in another order), or a module over another's weights (a table held sliced
 * shorter gets the donor's leading values: element i is drawn alike).
 */
export function syntheticFills(
  tensors: WeightEntry[], layout: DeviceLayout, seed: number, fileBytes: number | null, fanIn: (name: string) => number | undefined,
): Fill[] {
  const fills: Fill[] = [];
  tensors.forEach((t) => {
    if (!isSynthetic(t, fileBytes)) return;
    const sections = layout.sections.get(t.name)!;
    const add = (section: string, count: number, kind: number, scale: number, offset0: number) =>
      fills.push({ entry: t.name, section, offset: sections[section].offset, count, kind, scale, offset0, seed: mix(seed, t.name, Object.keys(sections).indexOf(section)) });
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

/** dc_fill's 32-bit hash of (index, seed) (runtime/gpu/support.cu dc_hash). */
export function dcHash(i: number, seed: number): number {
  let h = (Math.imul(i >>> 0, 0x9E3779B1) + (seed >>> 0)) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0; h = Math.imul(h, 0x85EBCA6B) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0; h = Math.imul(h, 0xC2B2AE35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** dc_fill's float32 value of element `index` (a safe integer) before it is stored: fma(u, scale, offset). */
export function fillValue(index: number, seed: number, scale: number, offset0: number): number {
  const lo = index % 2 ** 32, hi = Math.floor(index / 2 ** 32);
  const u = (dcHash((lo ^ Math.imul(hi, 0x27D4EB2D)) >>> 0, seed) >>> 8) * 2 ** -23 - 1;
  // u has 24 significant bits and float32 scale 24: the product is exact in float64, and so is the
  // sum with float32 offsets of the sizes used here, so one rounding to float32 is the fma's.
  return Math.fround(u * Math.fround(scale) + Math.fround(offset0));
}

/** The stored bits of element `index` of a fill: float32 bits, bf16 bits or the e4m3 code (kind 2, f16, not mirrored). */
export function fillStored(f: Pick<Fill, 'kind' | 'seed' | 'scale' | 'offset0'>, index: number): number {
  if (f.kind === FILL_ZERO) return 0;
  const v = fillValue(index, f.seed, f.scale, f.offset0);
  if (f.kind === FILL_KIND.float32) return new Uint32Array(Float32Array.of(v).buffer)[0];
  if (f.kind === FILL_KIND.bfloat16) return f32ToBf16(v);
  if (f.kind === FILL_KIND.float8e4m3fn) return encodeE4M3(v);
  return fail(`fill kind ${f.kind}`, 'float32, bfloat16, e4m3 or zero (the kinds mirrored on the CPU)', 'float16');
}

export interface PlannedEntry {
  name: string; kind: WeightEntry['kind']; dtype: string; shape: number[];
  sources?: WeightSource[]; unsourced?: string;
  /** The draws, by section, with scale and offset as the kernel receives them (float32). */
  fills: Omit<Fill, 'entry' | 'offset'>[];
  /** Stored bits at a few indices of each fill, from the CPU mirror: [section, index, bits]. */
  samples: [string, number, number][];
}

/**
 * Every synthetic draw of an artifact, per entry, with its provenance: what a framework needs to
 * hold the same weights (bench/gpu/same_weights.py). `converted`: entries the runtime reads through a
 * converted copy drawn apart (model.ts: an fp8 GEMM's float32 bias), which cannot be mirrored.
 */
export function fillPlan(tensors: WeightEntry[], seed: number, fileBytes: number | null, fanIn: (name: string) => number | undefined, converted: Set<string>): PlannedEntry[] {
  const layout = deviceLayout(tensors, fileBytes);
  const fills = syntheticFills(tensors, layout, seed, fileBytes, fanIn);
  const byEntry = new Map<string, Fill[]>();
  for (const f of fills) byEntry.set(f.entry, [...(byEntry.get(f.entry) ?? []), f]);
  return tensors.filter((t) => byEntry.has(t.name)).map((t) => {
    if (converted.has(t.name)) fail(`weight '${t.name}'`, 'a synthetic weight the runtime reads as drawn', 'a bias converted for an fp8 GEMM and drawn apart (model.ts)');
    const own = byEntry.get(t.name)!;
    const samples: [string, number, number][] = [];
    for (const f of own) {
      const picks = new Set([0, 1, 2, f.count - 1, Math.floor(f.count / 2), Math.floor(f.count / 3) + 7].filter((i) => i >= 0 && i < f.count));
      for (const i of picks) samples.push([f.section, i, fillStored(f, i)]);
    }
    return {
      name: t.name, kind: t.kind, dtype: t.dtype, shape: t.shape,
      ...(t.sources ? { sources: t.sources } : {}), ...(t.unsourced ? { unsourced: t.unsourced } : {}),
      ...(t.learned && !t.sources && !t.unsourced ? { unsourced: 'no provenance recorded (artifact compiled before provenance)' } : {}),
      fills: own.map(({ section, count, kind, scale, offset0, seed: s }) => ({ section, count, kind, scale: Math.fround(scale), offset0: Math.fround(offset0), seed: s })),
      samples,
    };
  });
}
