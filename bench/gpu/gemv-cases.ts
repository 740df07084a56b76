/**
 * The weight-only FP8 GEMV (compiler/codegen/gemv.ts) on the GPU host, prepared here:
 *
 *   npx tsx bench/gpu/gemv-cases.ts DIR      renders the kernel for the real shapes (Qwen-Image's fused
 *                                            modulation M = 1, 2, 4; Flux.2 [dev]'s) in each tuning
 *                                            variant, builds them for sm_90a into DIR/gemv.cubin and
 *                                            writes DIR/cases.json (name, shape, launch geometry)
 *   (GPU) python3 bench/gpu/gemv_fp8.py DIR $OUT   checks each against a float64 reference of the
 *                                            dequantized product (poisoned outputs) and times it
 *                                            against torch's bf16 GEMV (cuBLASLt) and a device copy
 *
 * The shapes are the ones the compiled modules launch (their manifests' gemv8 launches).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKernels } from '../../compiler/build/index.ts';
import { GEMV_TUNING, type GemvDescriptor, type GemvTuning, gemvGeometry, renderGemv } from '../../compiler/codegen/gemv.ts';
import { renderUnit } from '../../compiler/codegen/render.ts';

const dir = process.argv[2] ?? '.gpu/hb/gemv';
mkdirSync(dir, { recursive: true });
const shape = (m: number, n: number, k: number): GemvDescriptor => ({ kind: 'gemv-fp8', m, n, k, xType: '__nv_bfloat16', outType: '__nv_bfloat16', biasType: '__nv_bfloat16' });
const QWEN = shape(1, 2217984, 3072), FLUX = shape(1, 104448, 6144);
const variants: [string, GemvTuning][] = [
  ['default', GEMV_TUNING],
  ['bits', { ...GEMV_TUNING, convert: 'bits' }],
  ['inflight8', { ...GEMV_TUNING, inFlight: 8 }],
  ['inflight24', { ...GEMV_TUNING, inFlight: 24, minBlocks: 1 }],
];
const cases = [
  ...variants.map(([v, t]) => ({ label: `qwen m1 ${v}`, d: QWEN, t })),
  { label: 'qwen m2 default', d: { ...QWEN, m: 2 }, t: GEMV_TUNING },
  { label: 'qwen m4 default', d: { ...QWEN, m: 4 }, t: GEMV_TUNING },
  { label: 'flux m1 default', d: FLUX, t: GEMV_TUNING },
  { label: 'flux m1 bits', d: FLUX, t: { ...GEMV_TUNING, convert: 'bits' as const } },
];
const rendered = cases.map((c) => ({ ...c, k: renderGemv(c.d, c.t), g: gemvGeometry(c.d, c.t) }));
const unique = [...new Map(rendered.map((r) => [r.k.name, r.k])).values()];
const report = await buildKernels([{ name: 'gemv', source: renderUnit(unique), hot: true }], { target: 'h100', cacheDir: process.env.DC_KERNEL_CACHE ?? join(dir, 'cache') });
writeFileSync(join(dir, 'gemv.cubin'), report.cubins.get('gemv')!);
const fns = report.units[0].functions;
const out = rendered.map((r) => {
  const f = fns.find((x) => x.name === r.k.name)!;
  return { label: r.label, kernel: r.k.name, m: r.d.m, n: r.d.n, k: r.d.k, convert: r.t.convert, grid: r.k.grid, block: r.k.block, shared: r.k.sharedBytes, rows: r.g.rows, slice: r.g.slice, registers: f.registers, spills: f.spillStoreBytes };
});
writeFileSync(join(dir, 'cases.json'), JSON.stringify(out, null, 1));
for (const c of out) console.log(`${c.label}: ${c.kernel} grid ${c.grid} rows ${c.rows} slice ${c.slice} ${c.registers} regs, spills ${c.spills}`);
