/**
 * bench/gpu/gemm-own.ts `check`: the gate on the GPU harness's sampled outputs (bench/gpu/gemm_own.cu
 * writes them) against the sm_90a tensor-core simulation. A tiny case is written here in the
 * harness's sample format, its own-kernel outputs computed from the harness's operand hash through
 * sm90Dot directly (not through the check's QLinear route): the gate passes on those, and fails on
 * one output one ulp away or on a case without samples; a twin case's samples (the second GEMM of the
 * launch, its own operands) are held to the simulation the same way; a residual case's (Y = R + gate · y,
 * passes/fuse-gemm-residual.ts) to R + gate · y over the harness's R and two-batch gate, each step in bf16.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { check, harnessCode, harnessDraw } from '../bench/gpu/gemm-own.ts';
import { roundToBf16 } from '../compiler/ir/dtype.ts';
import { decodeE4M3 } from '../compiler/quant/formats.ts';
import { e4m3Parts, sm90Dot } from '../compiler/quant/tensor-core.ts';

const M = 32, N = 192, K = 256, rows = [0, 17], cols = [0, 7, 191];
const dir = mkdtempSync(join(tmpdir(), 'gemm-own-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (i: number, seed: number) => Array.from({ length: K }, (_, k) => decodeE4M3(harnessCode(i * K + k, seed)));
/** The simulation's and the exact sums at the sampled rows and columns, operands from the harness's seeds. */
function sums(xSeed: number, wSeed: number) {
  const sim: number[] = [], exact: number[] = [];
  for (const r of rows) {
    const x = row(r, xSeed);
    for (const c of cols) {
      const w = row(c, wSeed);
      sim.push(sm90Dot(e4m3Parts(x), 0, e4m3Parts(w), 0, K));
      exact.push(x.reduce((s, v, k) => s + v * w[k], 0));
    }
  }
  return { sim, exact };
}
const { sim, exact } = sums(1234 + M, 5678 + N);
// A twin of M2 rows: its operands from the harness's twin seeds; its Y bf16.
const M2 = 8;
const twin = sums(4321 + M2, 8765 + N).sim.map(roundToBf16);

/** The harness's sample file: int32 operands, SR, SC, M, N, K, rows, cols; float32 output blocks [SR][SC]. */
function samplesFile(name: string, m: number, blocks: number[]) {
  const head = Int32Array.from([0, rows.length, cols.length, m, N, K, ...rows, ...cols]);
  writeFileSync(join(dir, 'samples', name), Buffer.concat([Buffer.from(head.buffer), Buffer.from(Float32Array.from(blocks).buffer)]));
}
/** A case (with a twin of M2 rows: its samples too, `twinOut` unless null). */
function writeCase(own: number[], twinOut?: number[] | null, residual = false) {
  rmSync(join(dir, 'samples'), { recursive: true, force: true });
  mkdirSync(join(dir, 'samples'), { recursive: true });
  writeFileSync(join(dir, 'cases.txt'), `gemm k ${M} ${N} ${K} 192 1 0 0 ${residual ? 2 : 4} ${twinOut === undefined ? 0 : M2} ${residual ? 1 : 0} ${residual ? 'q192s4r' : 'f192s4o32'}:tiny\n`);
  samplesFile('case0.bin', M, [...own, ...sim.map(roundToBf16), ...exact.map(roundToBf16)]);
  if (twinOut) samplesFile('case0-twin.bin', M2, twinOut);
}

describe('gemm-own.ts check (the GPU harness\'s samples against the tensor-core simulation)', () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});

  it('passes when every own-kernel output is the simulation\'s bit for bit', () => {
    // The fixture differs from the exact sums (else it would not tell the two apart).
    expect(sim.some((v, i) => Math.fround(v) !== Math.fround(exact[i]))).toBe(true);
    writeCase(sim);
    expect(check(dir, join(dir, 'samples'))).toBe(0);
  });

  it('fails on one output one ulp away (rel L2 ~1e-7), and on a case without samples', () => {
    const off = [...sim];
    off[4] = Math.fround(off[4] * (1 + 2 ** -23));
    expect(off[4]).not.toBe(sim[4]);
    writeCase(off);
    expect(check(dir, join(dir, 'samples'))).toBe(1);
    expect(check(dir, join(dir, 'none'))).toBe(1);
  });

  it('a twin case: passes when the twin\'s outputs are the simulation\'s too; fails on one twin output off, or without its samples', () => {
    writeCase(sim, twin);
    expect(check(dir, join(dir, 'samples'))).toBe(0);
    const off = [...twin];
    off[2] = roundToBf16(off[2] * (1 + 2 ** -7));
    expect(off[2]).not.toBe(twin[2]);
    writeCase(sim, off);
    expect(check(dir, join(dir, 'samples'))).toBe(1);
    writeCase(sim, null);
    expect(check(dir, join(dir, 'samples'))).toBe(1);
  });

  it('a residual case: passes on bf16(R + bf16(gate · y)) over the harness\'s R and gate (rows 0 and 17: one in each of the two 16-row batches); fails on a plain y, or one output off', () => {
    // R from seed 23 in [-512, 512), the gate [2, N] from seed 29 in [-2, 2), bf16 (bench/gpu/gemm_own.cu residualInputs).
    const bf = (v: number) => roundToBf16(Math.fround(v));
    const y = sim.map(roundToBf16);
    const own = y.map((v, i) => {
      const r = rows[Math.floor(i / cols.length)], c = cols[i % cols.length];
      const R = bf(harnessDraw(r * N + c, 23, -512, 512)), g = bf(harnessDraw(Math.floor(r / (M / 2)) * N + c, 29, -2, 2));
      return bf(R + bf(g * v));
    });
    expect(own.some((v, i) => v !== y[i])).toBe(true);
    writeCase(own, undefined, true);
    expect(check(dir, join(dir, 'samples'))).toBe(0);
    writeCase(y, undefined, true);
    expect(check(dir, join(dir, 'samples'))).toBe(1);
    const off = [...own];
    off[3] = roundToBf16(off[3] * (1 + 2 ** -7));
    writeCase(off, undefined, true);
    expect(check(dir, join(dir, 'samples'))).toBe(1);
  });
});
