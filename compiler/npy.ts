/**
 * Reads and writes NumPy .npy files (format 1.0-3.0, little-endian, C order) as Tensors: the
 * format the fixtures' inputs and reference outputs come in.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fail } from './errors.ts';
import type { DType } from './ir/dtype.ts';
import { Tensor, tensorFromBytes } from './ir/tensor.ts';

const DESCR: Record<string, DType> = {
  '<f4': 'float32', '<f8': 'float64', '<f2': 'float16', '<i8': 'int64', '<i4': 'int32', '<i2': 'int16',
  '|i1': 'int8', '|u1': 'uint8', '|b1': 'bool', '<u2': 'uint16', '<u4': 'uint32', '<u8': 'uint64',
};

export function readNpy(file: string): Tensor {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    fail(file, 'a readable .npy file', (e as NodeJS.ErrnoException).code ?? String(e));
  }
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') fail(file, 'a NumPy .npy file', 'no NUMPY magic');
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  const dtype = descr ? DESCR[descr] : undefined;
  if (!dtype) fail(file, `a supported dtype (${Object.keys(DESCR).join(' ')})`, `'${descr}'`);
  if (fortran || shapeText === undefined) fail(file, 'C-order data with a shape', header.trim());
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  return tensorFromBytes(dtype, shape, buf.subarray(start + headerLen));
}

export function writeNpy(file: string, t: Tensor): void {
  const descr = Object.entries(DESCR).find(([, d]) => d === t.dtype)?.[0];
  if (!descr || !(t.data instanceof Float32Array || t.data instanceof BigInt64Array || t.data instanceof Uint8Array)) {
    throw new Error(`writeNpy: unsupported dtype ${t.dtype}`);
  }
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}
