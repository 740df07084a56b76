/**
 * Reads the index of a safetensors checkpoint: which tensor lives where, never the tensors themselves.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
 * ({key: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the data, each
 * tensor row-major little-endian at [8 + N + begin, 8 + N + end): the same bytes an ONNX external
 * initializer of that dtype and shape holds, so a graph's initializer can point straight at them.
 *
 * A checkpoint is a .safetensors file, or a folder of them (Hugging Face's sharded layout,
 * `*.safetensors.index.json` beside the shards, or a single file). Every header is checked against
 * its file: offsets inside the data, a length equal to the shape's, a known dtype, no key in two files.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fail } from '../errors.ts';
import { bytesFor, type DType } from '../ir/dtype.ts';
import type { Tensor } from '../ir/tensor.ts';
import { loadConstant } from './constants.ts';

/** One tensor of a checkpoint: its file and the byte range of its data. */
export interface StoredTensor {
  readonly key: string;
  readonly file: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly length: number;
}

const DTYPES: Readonly<Record<string, DType>> = {
  F64: 'float64', F32: 'float32', F16: 'float16', BF16: 'bfloat16', F8_E4M3: 'float8e4m3fn', F8_E5M2: 'float8e5m2',
  I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U64: 'uint64', U32: 'uint32', U16: 'uint16', U8: 'uint8', BOOL: 'bool',
};
const MAX_HEADER = 100 << 20; // the format's own limit on the JSON header

/** The tensors of one .safetensors file, by key. */
export function readSafetensorsHeader(file: string): Map<string, StoredTensor> {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    fail(file, 'a readable safetensors file', (e as NodeJS.ErrnoException).code ?? String(e));
  }
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < 8 || readSync(fd, head, 0, 8, 0) !== 8) fail(file, 'a safetensors file (an 8-byte header length first)', `a file of ${size} bytes`);
    const n = Number(head.readBigUInt64LE(0));
    if (n < 2 || n > MAX_HEADER || 8 + n > size) fail(file, `a safetensors header length within the file (${size} bytes)`, `${n} (truncated, or not safetensors?)`);
    const json = Buffer.alloc(n);
    readSync(fd, json, 0, n, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(json.toString('utf8'));
    } catch (e) {
      fail(file, 'a safetensors header of JSON', `unparsable (${(e as Error).message})`);
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) fail(file, 'a safetensors header object', typeof header);
    const base = 8 + n, tensors = new Map<string, StoredTensor>();
    for (const [key, v] of Object.entries(header)) {
      if (key === '__metadata__') continue;
      const where = `${file}: tensor '${key}'`;
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = typeof e?.dtype === 'string' ? DTYPES[e.dtype] : undefined;
      if (!dtype) fail(where, `a dtype of ${Object.keys(DTYPES).join(', ')}`, String(e?.dtype));
      const shape = e.shape, offs = e.data_offsets;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(where, 'a shape of non-negative integers', JSON.stringify(shape));
      if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isInteger(d) && d >= 0) || offs[1] < offs[0]) fail(where, 'data_offsets [begin, end]', JSON.stringify(offs));
      const need = bytesFor(dtype, (shape as number[]).reduce((a, b) => a * b, 1));
      if (offs[1] - offs[0] !== need) fail(where, `${need} bytes for ${dtype}[${shape}]`, `data_offsets ${JSON.stringify(offs)} (${offs[1] - offs[0]} bytes)`);
      if (base + offs[1] > size) fail(where, `data within the file (${size} bytes)`, `bytes up to ${base + offs[1]}: the file is truncated`);
      tensors.set(key, { key, file, dtype, shape: shape as number[], offset: base + offs[0], length: need });
    }
    return tensors;
  } finally {
    closeSync(fd);
  }
}

/** Every tensor of a checkpoint: one .safetensors file, or every .safetensors file of a folder. */
export function readCheckpoint(path: string): Map<string, StoredTensor> {
  const at = resolve(path);
  let files: string[];
  try {
    files = statSync(at).isDirectory() ? readdirSync(at).filter((f) => f.endsWith('.safetensors')).sort().map((f) => join(at, f)) : [at];
  } catch (e) {
    fail(path, 'a safetensors file or a folder of them', (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or folder' : String(e));
  }
  if (!files.length) fail(path, 'a folder holding .safetensors files', 'none');
  const all = new Map<string, StoredTensor>();
  for (const file of files) {
    for (const [key, t] of readSafetensorsHeader(file)) {
      const before = all.get(key);
      if (before) fail(`checkpoint ${path}`, 'each tensor in one file', `'${key}' in ${before.file} and ${file}`);
      all.set(key, t);
    }
  }
  return all;
}

/** The values of one stored tensor (small ones: statistics, not weights), read as any external initializer is. */
export function readStoredTensor(t: StoredTensor): Tensor {
  return loadConstant({ dtype: t.dtype, shape: t.shape, source: { kind: 'external', path: t.file, offset: t.offset, length: t.length } }, `${t.key} (${t.file})`);
}
