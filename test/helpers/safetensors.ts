/**
 * Test helpers that write safetensors checkpoints (the format of compiler/onnx/safetensors.ts, written
 * independently here): from given bytes, or sparse (the header with the file's full length and no
 * data written: zeros, for binding full-size graphs without their 30 GB), and a checkpoint made of a
 * graph's own external initializers.
 */
import { closeSync, openSync, writeSync, ftruncateSync } from 'node:fs';
import { bytesFor, type DType } from '../../compiler/ir/dtype.ts';
import type { Graph } from '../../compiler/ir/graph.ts';
import { readConstantBytes } from '../../compiler/onnx/constants.ts';

const CODES: Partial<Record<DType, string>> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', float64: 'F64', int64: 'I64', int32: 'I32', uint8: 'U8', int8: 'I8', bool: 'BOOL' };

export interface StoredEntry { key: string; dtype: DType; shape: readonly number[]; bytes?: Uint8Array }

/** Writes `entries` as one safetensors file; entries without bytes are left as zeros (a sparse file). */
export function writeSafetensors(file: string, entries: readonly StoredEntry[], metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let at = 0;
  for (const e of entries) {
    const n = bytesFor(e.dtype, e.shape.reduce((a, b) => a * b, 1));
    header[e.key] = { dtype: CODES[e.dtype], shape: e.shape, data_offsets: [at, at + n] };
    at += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the format pads the header to 8 bytes
  const head = Buffer.alloc(8 + json.length);
  head.writeBigUInt64LE(BigInt(json.length), 0);
  head.write(json, 8, 'utf8');
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, head, 0, head.length, 0);
    let pos = head.length;
    for (const e of entries) {
      if (e.bytes) writeSync(fd, e.bytes, 0, e.bytes.length, pos);
      pos += bytesFor(e.dtype, e.shape.reduce((a, b) => a * b, 1));
    }
    ftruncateSync(fd, pos);
  } finally {
    closeSync(fd);
  }
}

/** The graph's external initializers as checkpoint entries keyed `key(name)`, with their bytes (or sparse). */
export function graphEntries(graph: Graph, key: (name: string) => string, withBytes: boolean): StoredEntry[] {
  return [...graph.constants].filter(([, c]) => c.source.kind === 'external').map(([name, c]) => ({
    key: key(name), dtype: c.dtype, shape: c.shape, ...(withBytes ? { bytes: readConstantBytes(c, name) } : {}),
  }));
}
