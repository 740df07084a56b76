/**
 * Reads the bytes behind a Constant, only when asked: inline constants are already decoded;
 * external ones are read with one positioned read of exactly their range (never the whole file).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CompileError, fail } from '../errors.ts';
import type { Constant, Graph } from '../ir/graph.ts';
import { type Tensor, tensorFromBytes } from '../ir/tensor.ts';

/** Count of external reads, so tests can assert that no weight bytes were touched. */
export const externalReads = { count: 0, bytes: 0 };

export function readConstantBytes(c: Constant, name: string): Uint8Array {
  if (c.source.kind !== 'external') throw new Error('readConstantBytes on an inline constant');
  const { path, offset, length } = c.source;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    fail(path, `the external data file holding weight '${name}'`, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(e));
  }
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    if (done < length) fail(path, `${length} bytes at offset ${offset} for weight '${name}'`, `the file ends after ${done}`);
    externalReads.count++;
    externalReads.bytes += length;
    return buf;
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether `v` is a constant held in the graph itself (inline, at most `limit` elements) whose every
 * element passes `test`: what the compiler may rely on at build time. Weights in a weights file are
 * learned values, never read here (a structure-only export has none).
 */
export function inlineConstantAll(graph: Graph, v: string, test: (x: number) => boolean, limit = 1 << 20): boolean {
  const c = graph.constants.get(v);
  return !!c && c.source.kind === 'inline' && c.shape.reduce((a, b) => a * b, 1) <= limit && c.source.tensor.toNumbers().every(test);
}

export function loadConstant(c: Constant, name: string): Tensor {
  if (c.source.kind === 'inline') return c.source.tensor;
  try {
    return tensorFromBytes(c.dtype, c.shape, readConstantBytes(c, name));
  } catch (e) {
    if (e instanceof CompileError) throw e;
    fail(`weight '${name}'`, `${c.dtype}[${c.shape}]`, (e as Error).message);
  }
}
