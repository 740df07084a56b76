/**
 * The CPU mirror of dc_fill (runtime/gpu/weights.ts: dcHash, fillValue, fillStored) against hashes
 * computed by hand (Python integers, mod 2^32), and bench/gpu/same_weights.py's copy of the rule
 * against the mirror on a few hundred indices (python3 with numpy here: float32 and bf16 draws; the
 * torch backend, e4m3 included, runs on the GPU host: `same_weights.py self-test FILE`). fillPlan
 * lists each entry's draws, provenance and sample bits, and refuses a weight the runtime draws apart.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.ts';
import { writeMlp } from './mlp.ts';
import { decodeE4M3, roundE4M3 } from '../../compiler/quant/formats.ts';
import type { WeightEntry } from '../../compiler/weights-file.ts';
import { FILL_KIND, FILL_ZERO, dcHash, fillPlan, fillStored, fillValue } from '../../runtime/gpu/weights.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

describe('dc_fill on the CPU', () => {
  it('hashes as computed by hand', () => {
    // h = i * 0x9E3779B1 + seed; h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16 (mod 2^32).
    expect(dcHash(0, 0)).toBe(0);
    expect(dcHash(1, 0)).toBe(301794027);
    expect(dcHash(0, 42)).toBe(142593372);
    expect(dcHash(12345, 0xdeadbeef)).toBe(1022185935);
    expect(dcHash(4294967295, 7)).toBe(2851882025);
  });

  it('draws u from the top 24 bits, fma(u, scale, offset) in float32, and mixes in the index\'s high half', () => {
    expect(fillValue(5, 99, 0.5, 0)).toBe(0.387590229511261);
    expect(fillValue(2 ** 32 + 5, 99, 0.5, 0)).toBe(-0.28411537408828735);
    expect(fillValue(77, 3, 0.1, 1)).toBe(0.9165950417518616);
    for (let i = 0; i < 1000; i++) {
      const v = fillValue(i, 7, 1, 0); // u itself: in [-1, 1) on the 2^-23 grid
      expect(v).toBeGreaterThanOrEqual(-1);
      expect(v).toBeLessThan(1);
      expect(Number.isInteger((v + 1) * 2 ** 23)).toBe(true);
    }
  });

  it('stores the element type\'s rounding (bf16 bits, e4m3 codes, float32 bits)', () => {
    const f = { seed: 11, scale: 448, offset0: 0 };
    for (let i = 0; i < 200; i++) {
      const v = fillValue(i, f.seed, f.scale, f.offset0);
      expect(decodeE4M3(fillStored({ ...f, kind: FILL_KIND.float8e4m3fn! }, i))).toBe(roundE4M3(v));
      const bf = fillStored({ ...f, kind: FILL_KIND.bfloat16! }, i);
      expect(Math.abs(new Float32Array(new Uint32Array([bf << 16]).buffer)[0] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -8);
      expect(fillStored({ ...f, kind: FILL_KIND.float32! }, i)).toBe(new Uint32Array(Float32Array.of(v).buffer)[0]);
    }
    expect(fillStored({ ...f, kind: FILL_ZERO }, 3)).toBe(0);
  });

  it.skipIf(!hasNumpy)('same_weights.py draws the same bits (numpy backend, a few hundred indices)', () => {
    const checks = [];
    const fills = [
      { kind: FILL_KIND.float32!, seed: 0x5bd1e995, scale: Math.fround(Math.sqrt(3 / 6144)), offset0: 0 },
      { kind: FILL_KIND.float32!, seed: 17, scale: 0, offset0: Math.fround(Math.sqrt(3 / 3072) / 448) },
      { kind: FILL_KIND.bfloat16!, seed: 42, scale: Math.fround(0.1), offset0: 1 },
      { kind: FILL_KIND.bfloat16!, seed: 0xfffffffe, scale: Math.fround(0.02), offset0: 0 },
    ];
    for (const f of fills) {
      for (const index of [...Array.from({ length: 60 }, (_, i) => i * 104729), 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 12345, 6_813_499_391]) {
        checks.push({ ...f, index, bits: fillStored(f, index) });
      }
    }
    const file = join(mkdtempSync(join(tmpdir(), 'fills-')), 'checks.json');
    writeFileSync(file, JSON.stringify({ checks }));
    const r = spawnSync('python3', [join(ROOT, 'bench', 'gpu', 'same_weights.py'), 'self-test', file, '--backend', 'numpy'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim());
    expect(out).toMatchObject({ checks: checks.length, mismatches: 0 });
    expect(checks.length).toBeGreaterThanOrEqual(250);
  });
});

describe('fillPlan', () => {
  const tensors: WeightEntry[] = [
    { name: 'w', kind: 'fp8', dtype: 'bfloat16', shape: [8, 16], sections: {}, learned: true, scale: 'ws', layout: 'nk', sources: [{ initializer: 'm.w', box: [[0, 8], [0, 16]], perm: [0, 1], shape: [8, 16] }] },
    { name: 'norm.weight', kind: 'raw', dtype: 'bfloat16', shape: [16], sections: {}, learned: true, sources: [{ initializer: 'm.norm.weight', box: [[0, 16]], perm: [0], shape: [16] }] },
    { name: 'rope/cos0', kind: 'raw', dtype: 'float32', shape: [4, 8], sections: {}, learned: true, unsourced: "load-time Expand 'e' lies behind a reshape" },
    { name: 'shape', kind: 'raw', dtype: 'int64', shape: [2], sections: {}, learned: false, data: 'AAAAAAAAAAAAAAAAAAAAAA==' },
  ];

  it('lists each drawn entry with its fills (float32 scale/offset), provenance and sample bits', () => {
    const plan = fillPlan(tensors, 42, null, () => undefined, new Set());
    expect(plan.map((e) => e.name)).toEqual(['w', 'norm.weight', 'rope/cos0']);
    const [w, norm, cos] = plan;
    expect(w.fills.map((f) => [f.section, f.count, f.kind])).toEqual([['codes', 128, FILL_KIND.float8e4m3fn], ['scales', 8, FILL_KIND.float32]]);
    expect(w.fills[1].offset0).toBe(Math.fround(Math.sqrt(3 / 16) / 448));
    expect(norm.fills[0]).toMatchObject({ kind: FILL_KIND.bfloat16, scale: Math.fround(0.1), offset0: 1 });
    expect(w.sources).toEqual(tensors[0].sources);
    expect(cos.unsourced).toMatch(/Expand/);
    for (const e of plan) {
      for (const [section, index, bits] of e.samples) expect(bits).toBe(fillStored(e.fills.find((f) => f.section === section)!, index));
    }
    expect(fillPlan(tensors, 43, null, () => undefined, new Set())[0].fills[0].seed).not.toBe(w.fills[0].seed);
  });

  it('refuses an entry the runtime draws apart (a converted fp8 bias)', () => {
    expect(() => fillPlan(tensors, 42, null, () => undefined, new Set(['norm.weight']))).toThrow(/converted/);
  });
});

describe('run-cli --synthetic-fills (no GPU)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fills-cli-'));
  const art = join(tmp, 'mlp');
  beforeAll(async () => {
    await compileModel({ model: await writeMlp(join(tmp, 'src')), target: 'h100', precision: 'fp8', out: art });
  }, 120_000);

  it('writes every learned entry\'s draws with its sources, and needs --out', () => {
    const cli = join(ROOT, 'runtime', 'gpu', 'run-cli.ts');
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8' });
    const file = join(tmp, 'fills.json');
    const ok = run(art, '--synthetic-fills', '42', '--out', file);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const plan = JSON.parse(readFileSync(file, 'utf8'));
    const manifest = JSON.parse(readFileSync(join(art, 'manifest.json'), 'utf8'));
    const learned = (manifest.weights.tensors as WeightEntry[]).filter((t) => t.learned);
    expect(plan.seed).toBe(42);
    expect(plan.entries.map((e: { name: string }) => e.name)).toEqual(learned.map((t) => t.name));
    for (const e of plan.entries) {
      const t = learned.find((x) => x.name === e.name)!;
      expect(e.sources).toEqual(t.sources);
      expect(e.sources.length).toBeGreaterThan(0);
      if (t.kind === 'fp8') expect(e.fills[1]).toMatchObject({ section: 'scales', count: t.shape[0], offset0: Math.fround(Math.sqrt(3 / t.shape[1]) / 448) });
    }
    const missing = run(art, '--synthetic-fills', '42');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/--synthetic-fills: expected --out FILE\.json/);
    // A module compiled over another's weights (its draws are the donor's): refused, naming a shared weight.
    const borrower = join(tmp, 'mlp-borrower');
    const shared = (manifest.weights.tensors as WeightEntry[]).map((t, i) => (i === 0 ? { ...t, shared: true, sections: {} } : t));
    mkdirSync(borrower, { recursive: true });
    cpSync(art, borrower, { recursive: true });
    writeFileSync(join(borrower, 'manifest.json'), JSON.stringify({ ...manifest, weights: { ...manifest.weights, tensors: shared } }));
    const refused = run(borrower, '--synthetic-fills', '42', '--out', file);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/--synthetic-fills .*mlp-borrower: expected a module that holds its weights .*found weight '.*' is the other module's/);
  }, 60_000);
});
