/**
 * npx bench without a GPU (as in CI): the tiny Qwen-Image transformer compiled (reference path)
 * against onnxruntime-node, each compared with PyTorch's output; the report files; bad flags.
 * No timing is asserted (speed is measured in benchmarks, not tests).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../bench/cli.ts';
import { type BenchResult, chartSvg } from '../bench/report.ts';

describe('npx bench (CPU)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('compares the compiled tiny model with onnxruntime-node and writes json, markdown and a chart', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bench-'));
    const printed: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: string) => void printed.push(s));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    expect(await main(['--cpu', '--iters', '1', '--models', 'qwen_image', '--out', out, '--json'])).toBe(0);
    const r = JSON.parse(readFileSync(join(out, 'bench-cpu.json'), 'utf8')) as BenchResult;
    expect(JSON.parse(printed.at(-1)!)).toEqual(r);
    expect(r.kind).toBe('cpu');
    expect(r.rows.map((x) => x.system)).toEqual(['compiled (fp8, reference path)', 'onnxruntime-node (fp32)']);
    const [compiled, onnx] = r.rows;
    expect(onnx.relL2!).toBeLessThan(1e-5); // the export itself, fp32
    expect(compiled.relL2!).toBeGreaterThan(onnx.relL2!); // FP8 GEMMs move it...
    expect(compiled.relL2!).toBeLessThan(1e-2); // ...within the fp8 bar
    for (const x of r.rows) expect(x.msPerStep).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'bench-cpu.md'), 'utf8')).toContain('| tiny qwen_image | compiled (fp8, reference path) |');
    expect(readFileSync(join(out, 'bench-cpu.svg'), 'utf8')).toMatch(/^<svg/);
    expect(existsSync(join(out, 'bench-cpu.png'))).toBe(true);
  }, 120_000);

  it('the chart: the label column as wide as the longest label, bars in proportion', () => {
    const row = (system: string, msPerStep: number) => ({ model: 'flux2_dev', system, msPerStep });
    const r = { kind: 'gpu', date: 'D', device: 'GPU', command: 'c', weights: 'w', seed: 42, steps: 8, notes: [],
      rows: [row('compiled, step memo (a repeated timestep)', 241.2), row('diffusers eager (bf16)', 540.7)] } as unknown as BenchResult;
    const svg = chartSvg(r);
    const labelX = [...svg.matchAll(/<text x="(\d+)" y="\d+" text-anchor="end"/g)].map((m) => Number(m[1]));
    const longest = 'flux2_dev · compiled, step memo (a repeated timestep)'.length;
    for (const x of labelX) expect(x).toBeGreaterThanOrEqual(longest * 7.5); // the label ends at x: it starts inside the image
    const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths[0] / widths[1]).toBeCloseTo(241.2 / 540.7, 3);
  });

  it('rejects bad flags with one line and exit 1', async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((s: string) => void errors.push(s));
    expect(await main(['--steps', '0'])).toBe(1);
    expect(errors.at(-1)).toMatch(/--steps: expected a positive integer, found '0'/);
    expect(await main(['--cpu', '--models', 'flux2_dev'])).toBe(1);
    expect(errors.at(-1)).toMatch(/--models: expected flux2 and\/or qwen_image/);
    expect(await main(['--artifact', 'flux2_dev'])).toBe(1);
    expect(errors.at(-1)).toMatch(/--artifact: expected MODEL=DIR/);
    expect(await main(['--bogus'])).toBe(1);
    expect(await main(['--cpu', '--size', '1024x768'])).toBe(1);
    expect(errors.at(-1)).toMatch(/--size: expected a GPU bench .* found --cpu/);
    expect(await main(['--size', '1000x768'])).toBe(1);
    expect(errors.at(-1)).toMatch(/--size: expected width and height that are positive multiples of 16/);
  });
});
