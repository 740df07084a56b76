/**
 * Inputs of the GPU attention tests, described so both machines compute the same values without
 * shipping them: each root buffer a kernel reads is filled on the GPU by the generator of
 * test/gpu/attention_harness.cu (dc_hash, mirrored here), optionally with strided runs overwritten
 * by a second generator of another amplitude (garbage in padded keys), or uploaded from a small file
 * (masks). `valueAt` gives any element as the GPU sees it (rounded to the buffer's type).
 */
import { roundToBf16, roundToF16 } from '../../compiler/ir/dtype.ts';

export function dcHash(i: number, seed: number): number {
  let h = (Math.imul(i, 0x9e3779b1) + seed) >>> 0;
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0; h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0; h ^= h >>> 16;
  return h >>> 0;
}
/** Uniform in [-1, 1), computed in fp32 exactly as the harness does. */
export const uniform = (i: number, seed: number) => Math.fround((dcHash(i, seed) >>> 8) * (2 / 16777216) - 1);

export type ElemType = 'float' | '__nv_bfloat16' | '__half' | 'bool';
export const KIND: Record<ElemType, number> = { float: 0, __nv_bfloat16: 2, __half: 3, bool: 7 };
export const WIDTH: Record<ElemType, number> = { float: 4, __nv_bfloat16: 2, __half: 2, bool: 1 };

/** COUNT runs of LEN elements, STRIDE apart from OFFSET, filled by generator (seed, amp). */
export interface Run { offset: number; count: number; stride: number; len: number; seed: number; amp: number }

export interface RootData {
  name: string;
  type: ElemType;
  elements: number;
  seed: number;
  amp: number;
  garbage: Run[];
  /** Whole contents, when uploaded instead of generated (masks). */
  values?: Float32Array;
}

const round = (type: ElemType, v: number) => (type === '__nv_bfloat16' ? roundToBf16(v) : type === '__half' ? roundToF16(v) : type === 'bool' ? (v ? 1 : 0) : v);

export function valueAt(root: RootData, i: number): number {
  if (root.values) return root.values[i];
  for (const g of root.garbage) {
    const k = i - g.offset;
    if (k >= 0 && k < g.count * g.stride && k % g.stride < g.len) return round(root.type, Math.fround(uniform(i, g.seed) * g.amp));
  }
  return round(root.type, Math.fround(uniform(i, root.seed) * root.amp));
}

/** The bytes of a root's uploaded contents, in its element type. */
export function encodeValues(root: RootData): Buffer {
  const v = root.values!;
  const buf = Buffer.alloc(v.length * WIDTH[root.type]);
  for (let i = 0; i < v.length; i++) {
    if (root.type === 'float') buf.writeFloatLE(v[i], 4 * i);
    else if (root.type === 'bool') buf[i] = v[i] ? 1 : 0;
    else if (root.type === '__nv_bfloat16') {
      const f = new Float32Array([v[i]]);
      buf.writeUInt16LE(new Uint32Array(f.buffer)[0] >>> 16, 2 * i);
    } else throw new Error(`upload of ${root.type}`);
  }
  return buf;
}

/** Decodes `n` elements of a saved output. */
export function decode(buf: Buffer, offset: number, type: ElemType, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (type === 'float') out[i] = buf.readFloatLE(offset + 4 * i);
    else if (type === '__nv_bfloat16') out[i] = new Float32Array(new Uint32Array([buf.readUInt16LE(offset + 2 * i) << 16]).buffer)[0];
    else throw new Error(`decode ${type}`);
  }
  return out;
}
