/**
 * Tile and schedule variants of the warpgroup conv kernel (templates/conv_wgmma.cu.njk) on the
 * full-size VAE decoders' convolutions, for choosing the default (compiler/codegen/conv.ts wgTile):
 *
 *   npx tsx bench/gpu/conv-variants.ts prepare CASES_DIR OUT_DIR
 *        CASES_DIR: a `cases.ts prepare DIR vae` folder (its full-size conv lines give arguments,
 *        seeds and sample strides); writes OUT_DIR/kernels.cubin, cases.txt (one line per conv and
 *        variant: the same arguments under the variant's kernel, grid and shared memory) and
 *        variants.json
 *   (GPU) test/gpu/run_each.sh OUT_DIR RESULTS ./harness
 *   npx tsx bench/gpu/conv-variants.ts report OUT_DIR RESULTS
 *        markdown: µs and TFLOP/s per variant, and each variant's saved samples against the default
 *        kernel's (the default is checked against float64 by cases.ts; same inputs, so a variant
 *        agrees with it to rounding)
 *
 * Variants: bm64 (the 3x3 default: both warpgroups share 64 output channels and split 464
 * positions), bm64-late (the next chunk's weights issued after the MMAs complete, not after they
 * start), bm128 (the 1x1 default: the warpgroups split 128 output channels; 3x3: 200 positions).
 * H100 figures: bench/results/vae-wgmma-2026-11-26.md.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKernels } from '../../compiler/build/index.ts';
import { type ConvDescriptor, convDescriptor, renderConv, renderWgmma, wgTile } from '../../compiler/codegen/conv.ts';
import { renderUnit } from '../../compiler/codegen/render.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy } from '../../passes/quantize/policy.ts';
import { vaeFull } from '../../test/gpu/vae-cases.ts';

const VARIANTS = [
  { id: 'bm64', bm: 64, wLate: false },
  { id: 'bm64-late', bm: 64, wLate: true },
  { id: 'bm128', bm: 128, wLate: false },
] as const;

interface Row { kernel: string; base: string; variant: string; shape: string; flops: number; count: number; samples: number }

async function prepare(casesDir: string, out: string): Promise<void> {
  const lines = readFileSync(join(casesDir, 'cases.txt'), 'utf8').split('\n').filter(Boolean);
  const byName = new Map(lines.map((l) => [l.split(' ')[0], l]));
  const descs = new Map<string, { d: ConvDescriptor; count: number }>();
  for (const file of vaeFull()) {
    const graph = runPipeline(inferTypes(importOnnx(file).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
    for (const node of graph.nodes.filter((n) => n.op === 'FusedConv')) {
      const d = convDescriptor(graph, node);
      if (!d.wg) continue;
      const name = renderConv(d).name;
      const known = descs.get(name);
      if (known) known.count++;
      else descs.set(name, { d, count: 1 });
    }
  }
  const kernels = [], rows: Row[] = [], caseLines: string[] = [];
  for (const [base, { d, count }] of descs) {
    const line = byName.get(base);
    if (!line || line.split(' ')[4] === '0') continue; // not a timed full-size case
    const f = line.split(' ');
    const save = Number(f[5]), outElems = Number(f[f.length - 4]);
    for (const v of VARIANTS) {
      const k = renderWgmma({ ...d, wg: wgTile(d, { bm: v.bm })! }, { wLate: v.wLate });
      kernels.push(k);
      caseLines.push([k.name, k.grid, k.block, k.sharedBytes, ...f.slice(4)].join(' '));
      rows.push({
        kernel: k.name, base, variant: v.id, count, flops: 2 * d.n * d.co * d.ho * d.wo * d.ci * d.kh * d.kw, samples: Math.floor((outElems - 1) / save) + 1,
        shape: `${d.ci}→${d.co}, ${d.ho}², ${d.kh}x${d.kw}${d.up > 1 ? `, up ${d.up}` : ''}`,
      });
    }
  }
  const report = await buildKernels([{ name: 'variants', source: renderUnit(kernels), hot: false }], { target: 'h100', cacheDir: join(out, '..', 'build-cache') });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'kernels.cubin'), report.cubins.get('variants')!);
  writeFileSync(join(out, 'cases.txt'), caseLines.join('\n') + '\n');
  writeFileSync(join(out, 'variants.json'), JSON.stringify(rows, null, 1));
  const fns = report.units.flatMap((u) => u.functions);
  console.log(`${rows.length} variant kernels of ${descs.size} convolutions, max registers ${Math.max(...fns.map((x) => x.registers))}, spills ${report.spills}`);
  for (const w of report.units.flatMap((u) => u.warnings)) console.log(`warning: ${w}`);
}

function report(dir: string, results: string): void {
  const rows: Row[] = JSON.parse(readFileSync(join(dir, 'variants.json'), 'utf8'));
  const us = new Map(readFileSync(join(results, 'log.txt'), 'utf8').split('\n').filter((l) => l.startsWith('time ')).map((l) => l.split(' ')).map(([, k, t]) => [k, Number(t)]));
  const bytes = readFileSync(join(results, 'outputs.bin'));
  const samples = new Map<string, Float32Array>();
  let off = 0;
  for (const r of rows) {
    const v = new Float32Array(r.samples);
    for (let i = 0; i < r.samples; i++) v[i] = new Float32Array(new Uint32Array([bytes.readUInt16LE(off + 2 * i) << 16]).buffer)[0];
    samples.set(r.kernel, v);
    off += 2 * r.samples;
  }
  const ids = VARIANTS.map((v) => v.id);
  console.log(`| conv | × | ${ids.map((id) => `${id} µs (TFLOP/s)`).join(' | ')} | worst rel. L2 vs bm64 |`);
  console.log(`| --- | ---: | ${ids.map(() => '---:').join(' | ')} | ---: |`);
  const totals = new Map(ids.map((id) => [id, 0]));
  for (const base of [...new Set(rows.map((r) => r.base))]) {
    const group = rows.filter((r) => r.base === base);
    const ref = samples.get(group.find((r) => r.variant === 'bm64')!.kernel)!;
    let worst = 0;
    const cells = ids.map((id) => {
      const r = group.find((x) => x.variant === id)!;
      const t = us.get(r.kernel);
      totals.set(id, totals.get(id)! + (t ?? NaN) * r.count);
      const s = samples.get(r.kernel)!;
      let num = 0, den = 0;
      for (let i = 0; i < s.length; i++) { num += (s[i] - ref[i]) ** 2; den += ref[i] ** 2; }
      worst = Math.max(worst, Number.isNaN(num) ? Infinity : Math.sqrt(num / Math.max(den, 1e-30)));
      return t === undefined ? 'failed' : `${t.toFixed(1)} (${(r.flops / t / 1e6).toFixed(0)})`;
    });
    console.log(`| ${group[0].shape} | ${group[0].count} | ${cells.join(' | ')} | ${worst.toExponential(1)} |`);
  }
  console.log(`\nall warpgroup convolutions, each shape x its count: ${ids.map((id) => `${id} ${(totals.get(id)! / 1e3).toFixed(2)} ms`).join(', ')}`);
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'prepare') await prepare(a, b);
else if (cmd === 'report') report(a, b);
else console.log('usage: conv-variants.ts prepare CASES_DIR OUT_DIR | report OUT_DIR RESULTS');
