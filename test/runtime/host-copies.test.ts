/**
 * runtime/gpu/weights.ts hostCopies: what a model copies entry by entry when it does not upload
 * weights.bin whole. With synthetic weights, the entries not drawn get every section from the file —
 * the MLP's FP8 weights, quantized at compile time from the graph's own constants, included (the
 * loader once refused them, and before that left them unset); a module over another's weights
 * copies its own entries' file ranges to its own layout; bytes that exist nowhere are refused.
 * syntheticFills seeds each entry by its name: the tiny Qwen-Image for 16 text tokens draws its own
 * RoPE tables as the transformer draws its 24-row ones, element for element over the 16 rows they
 * share, and an artifact listing its weights in another order draws the same values.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileModel } from '../../compiler/compile.ts';
import type { WeightEntry } from '../../compiler/weights-file.ts';
import { deviceLayout, fillStored, hostCopies, syntheticFills } from '../../runtime/gpu/weights.ts';
import { tinyDir } from '../helpers/fixtures.ts';
import { mlpModel } from './mlp.ts';

const raw = (name: string, learned: boolean, extra: Partial<WeightEntry> = {}): WeightEntry =>
  ({ name, kind: 'raw', dtype: 'float32', shape: [16], learned, sections: { data: { offset: 512, length: 64 } }, ...extra });
const plan = (copies: ReturnType<typeof hostCopies>) => copies.map((c) => `${c.entry.name}.${c.section} ${c.from === 'inline' ? 'inline' : `${c.from.offset}+${c.from.length}`} -> ${c.to.offset}`);

describe('hostCopies', () => {
  it('synthetic weights over the MLP (its weights are the graph\'s constants, not learned): every section from the file, FP8 codes and scales too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'host-copies-'));
    writeFileSync(join(dir, 'model.onnx'), mlpModel());
    await compileModel({ model: join(dir, 'model.onnx'), precision: 'fp8', out: join(dir, 'out'), build: false });
    const m = JSON.parse(readFileSync(join(dir, 'out', 'manifest.json'), 'utf8')) as { weights: { bytes: number; tensors: WeightEntry[] } };
    const tensors = m.weights.tensors;
    expect(tensors.filter((t) => t.kind === 'fp8' && !t.learned).length).toBe(2);
    const copies = hostCopies(tensors, deviceLayout(tensors, m.weights.bytes), true, m.weights.bytes);
    const want = tensors.flatMap((t) => Object.entries(t.sections).map(([s, at]) => `${t.name}.${s} ${at.offset}+${at.length} -> ${at.offset}`));
    expect(plan(copies)).toEqual(want);
    expect(want.filter((w) => /\/wq\.(codes|scales) /.test(w)).length).toBe(4);
  });

  it('a module over another\'s weights: its own entries\' file ranges go to its own layout; learned ones are drawn with synthetic weights', () => {
    const own = [raw('table', true), raw('mask', false, { sections: { data: { offset: 1024, length: 64 } } }), raw('consts', false, { sections: {}, data: 'AAAA' })];
    const layout = deviceLayout(own, null); // placed one after another, 256-byte aligned
    expect(plan(hostCopies(own, layout, false, 2048))).toEqual(['table.data 512+64 -> 0', 'mask.data 1024+64 -> 256', 'consts.data inline -> 512']);
    expect(plan(hostCopies(own, layout, true, 2048))).toEqual(['mask.data 1024+64 -> 256', 'consts.data inline -> 512']);
  });

  it('refuses a section whose bytes exist nowhere (no file, no inline data, real weights), naming the weight', () => {
    const own = [raw('w', true, { sections: {} })];
    expect(() => hostCopies(own, deviceLayout(own, null), false, null)).toThrow(/weight 'w'.*'data' section \(inline, or in weights\.bin\)/);
  });
});

describe('syntheticFills: seeded by name', () => {
  it('the tiny Qwen-Image for 16 text tokens: its own RoPE tables are drawn as the transformer\'s 24-row ones over the rows they share', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donor-fills-'));
    const donorDir = join(dir, 'donor'), borrowerDir = join(dir, 't16');
    await compileModel({ model: tinyDir('qwen_image'), precision: 'fp8', out: donorDir, build: false });
    const read = (d: string) => (JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8')) as { weights: { bytes: number; tensors: WeightEntry[] } }).weights;
    await compileModel({ model: tinyDir('qwen_image'), precision: 'fp8', out: borrowerDir, build: false, textLength: 16, weightsFrom: read(donorDir).tensors });
    const [donor, borrower] = [read(donorDir), read(borrowerDir)];
    const own = borrower.tensors.filter((t) => !t.shared); // as runtime/gpu/model.ts loads a borrower
    const tables = own.filter((t) => t.learned);
    expect(tables.length).toBeGreaterThan(0);
    const theirs = syntheticFills(donor.tensors, deviceLayout(donor.tensors, donor.bytes), 42, donor.bytes, () => undefined);
    const mine = syntheticFills(own, deviceLayout(own, null), 42, borrower.bytes, () => undefined);
    for (const t of tables) {
      const [a] = mine.filter((f) => f.entry === t.name), [b] = theirs.filter((f) => f.entry === t.name);
      expect([a.count * 24, a.scale, a.offset0]).toEqual([b.count * 16, b.scale, b.offset0]);
      const values = (f: typeof a) => Array.from({ length: a.count }, (_, i) => fillStored(f, i));
      expect(values(a)).toEqual(values(b));
    }
    // Another seed, or another entry, draws other values.
    const other = syntheticFills(own, deviceLayout(own, null), 43, borrower.bytes, () => undefined).find((f) => f.entry === tables[0].name)!;
    expect(other.seed).not.toBe(theirs.find((f) => f.entry === tables[0].name)!.seed);
    expect(new Set(theirs.map((f) => f.seed)).size).toBe(theirs.length);
  }, 60_000);

  it('the same entries listed in another order (another build\'s launch order) draw the same fills', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'order-fills-'));
    await compileModel({ model: tinyDir('flux2'), precision: 'fp8', out: dir, build: false });
    const { tensors, bytes } = (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { weights: { bytes: number; tensors: WeightEntry[] } }).weights;
    const fills = (list: WeightEntry[]) => syntheticFills(list, deviceLayout(list, null), 42, bytes, () => 16).map(({ offset: _, ...f }) => f)
      .sort((a, b) => `${a.entry}.${a.section}`.localeCompare(`${b.entry}.${b.section}`));
    expect(fills([...tensors].reverse())).toEqual(fills(tensors));
  }, 60_000);
});
