/**
 * Weight-quantization benchmark (issue 4): streaming FP8 and NVFP4 quantization of a synthetic
 * multi-GB bf16 weights file. Goal: >= 200 M parameters/s and <= 2 GiB peak RSS on the 2-core CPU
 * machine.
 *
 *   npx tsx bench/quantize-weights.ts [GB] [--workers 0,1,2] [--formats fp8,nvfp4] [--chunk-mib 1] [--transposed]
 *
 * --transposed reads each stored [18432, 6144] weight as an exporter's folded transpose: a weight of
 * 6144 output channels and 18432 inputs stored [K, N] (ExternalWeight.transposed).
 *
 * 1. Writes a bf16 file of about GB gigabytes (default 2) in a temp dir, in 8 MiB chunks (never
 *    held in memory): weights of shape [18432, 6144] (Flux.2's MLP shape) back to back, the last one
 *    shorter. Values are Gaussian-like and seeded: a 65536-entry table of Box–Muller samples (bf16),
 *    indexed by a xorshift generator, each row scaled by 2^k with k drawn per row in [-10, -2].
 * 2. For each (format, workers) it runs a fresh child process that quantizes every weight of the
 *    file in turn (compiler/quant/weights.ts, one output file), timing the whole file and reading
 *    the child's peak RSS (process.resourceUsage().maxRSS).
 *    CPU seconds (user + system, all threads) and the 1-minute load average before and after are
 *    recorded too: on a shared 2-core machine another busy process halves the 2-worker figure.
 * 3. Prints a markdown table with the date and the machine, writes bench/results/quantize-weights.json
 *    and removes the temp files. The source file is freshly written, so reads come from the page
 *    cache (as they would right after a download); page cache is not counted in RSS.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { f32ToBf16 } from '../compiler/ir/dtype.ts';
import { closeQuantWorkers, type ExternalWeight, quantizeWeight, type WeightFormat } from '../compiler/quant/weights.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = 18432, K = 6144;

interface Plan { path: string; weights: ExternalWeight[]; params: number }

function planFor(path: string, gb: number, transposed = false): Plan {
  const totalRows = Math.max(1, Math.round((gb * 1e9) / (2 * K)));
  const weights: ExternalWeight[] = [];
  for (let r = 0, i = 0; r < totalRows; r += N, i++) {
    const rows = Math.min(N, totalRows - r);
    const stored = { name: `blocks.${i}.mlp.w`, dtype: 'bfloat16' as const, path, offset: r * K * 2, length: rows * K * 2 };
    weights.push(transposed ? { ...stored, shape: [K, rows], transposed: true } : { ...stored, shape: [rows, K] });
  }
  return { path, weights, params: totalRows * K };
}

function generate(plan: Plan): number {
  const t0 = performance.now();
  let s = 0x9e3779b9 >>> 0;
  const next = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  // Table of Gaussian samples as bf16 bits.
  const table = new Uint16Array(65536);
  for (let i = 0; i < 65536; i += 2) {
    const u1 = (next() + 1) / 2 ** 32, u2 = next() / 2 ** 32;
    const rad = Math.sqrt(-2 * Math.log(u1));
    table[i] = f32ToBf16(rad * Math.cos(2 * Math.PI * u2));
    table[i + 1] = f32ToBf16(rad * Math.sin(2 * Math.PI * u2));
  }
  const fd = openSync(plan.path, 'w');
  const rowsPerChunk = Math.floor((8 << 20) / (2 * K));
  const chunk = new Uint16Array(rowsPerChunk * K);
  const bytes = new Uint8Array(chunk.buffer);
  const totalRows = plan.params / K;
  let pos = 0;
  for (let r = 0; r < totalRows; r += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, totalRows - r);
    for (let i = 0; i < n; i++) {
      const shift = ((next() % 9) - 10) << 7; // 2^-10 .. 2^-2 on the bf16 exponent
      for (let j = 0; j < K; j += 2) {
        const v = next();
        const a = table[v & 0xffff], b = table[v >>> 16];
        chunk[i * K + j] = a & 0x7fff ? a + shift : a;
        chunk[i * K + j + 1] = b & 0x7fff ? b + shift : b;
      }
    }
    const len = n * K * 2;
    let done = 0;
    while (done < len) done += writeSync(fd, bytes, done, len - done, pos + done);
    pos += len;
  }
  closeSync(fd);
  return (performance.now() - t0) / 1000;
}

interface Row {
  format: WeightFormat; workers: number; params: number; weights: number; seconds: number;
  mParamsPerS: number; cpuSeconds: number; peakRssMiB: number; loadBefore: number; loadAfter: number; relL2Mean: number; relL2Max: number; gbRead: number; gbWritten: number;
}

async function child(format: WeightFormat, workers: number, gb: number, dir: string, chunkMiB: number, transposed: boolean): Promise<Row> {
  const plan = planFor(join(dir, 'weights.bf16'), gb, transposed);
  const outPath = join(dir, `out.${format}`);
  const fd = openSync(outPath, 'w');
  const errors: number[] = [];
  let read = 0, written = 0, offset = 0;
  const loadBefore = loadavg()[0];
  const ru0 = process.resourceUsage();
  const cpu0 = ru0.userCPUTime + ru0.systemCPUTime;
  const t0 = performance.now();
  for (const w of plan.weights) {
    const st = await quantizeWeight(w, format, fd, offset, { workers, chunkBytes: Math.round(chunkMiB * 2 ** 20) });
    offset = st.layout.end;
    errors.push(st.relL2);
    read += st.bytesRead;
    written += st.bytesWritten;
  }
  const seconds = (performance.now() - t0) / 1000;
  const ru = process.resourceUsage();
  const cpuSeconds = (ru.userCPUTime + ru.systemCPUTime - cpu0) / 1e6;
  closeSync(fd);
  await closeQuantWorkers();
  rmSync(outPath, { force: true });
  return {
    format, workers, params: plan.params, weights: plan.weights.length, seconds, mParamsPerS: plan.params / seconds / 1e6, cpuSeconds, loadBefore, loadAfter: loadavg()[0],
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    relL2Mean: errors.reduce((a, b) => a + b, 0) / errors.length, relL2Max: Math.max(...errors),
    gbRead: read / 1e9, gbWritten: written / 1e9,
  };
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const [, format, workers, gb, dir, chunkMiB, layout] = args;
    console.log(JSON.stringify(await child(format as WeightFormat, Number(workers), Number(gb), dir, Number(chunkMiB), layout === 'transposed')));
    return;
  }
  const gb = args[0] && !args[0].startsWith('--') ? Number(args[0]) : 2;
  const workersList = (flag(args, '--workers') ?? '0,2').split(',').map(Number);
  const formats = (flag(args, '--formats') ?? 'fp8,nvfp4').split(',') as WeightFormat[];
  const chunkMiB = Number(flag(args, '--chunk-mib') ?? 1);
  const dir = mkdtempSync(join(tmpdir(), 'quantize-weights-'));
  const rows: Row[] = [];
  try {
    const plan = planFor(join(dir, 'weights.bf16'), gb);
    const genS = generate(plan);
    console.error(`generated ${(plan.params * 2 / 1e9).toFixed(2)} GB (${plan.weights.length} weights [${N}, ${K}]) in ${genS.toFixed(1)} s`);
    for (const format of formats) {
      for (const workers of workersList) {
        const c = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', format, String(workers), String(gb), dir, String(chunkMiB), args.includes('--transposed') ? 'transposed' : 'rows'], { encoding: 'utf8', cwd: ROOT });
        if (c.status !== 0) throw new Error(`${format} workers=${workers}: ${c.stderr}`);
        const row = JSON.parse(c.stdout.trim().split('\n').at(-1)!) as Row;
        console.error(`${format} workers=${workers}: ${row.mParamsPerS.toFixed(0)} M params/s, ${row.cpuSeconds.toFixed(1)} CPU s, ${row.peakRssMiB.toFixed(0)} MiB, load ${row.loadBefore.toFixed(2)} -> ${row.loadAfter.toFixed(2)}`);
        rows.push(row);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const date = new Date().toISOString().slice(0, 10);
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`;
  console.log(`streaming weight quantization, bf16 source (page cache), ${date}, ${machine}, chunk ${chunkMiB} MiB\n`);
  console.log('| format | workers | params | weights | wall s | M params/s | CPU s (all threads) | peak RSS MiB | rel L2 mean (max) | GB read | GB written | load avg before -> after |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.format} | ${r.workers} | ${(r.params / 1e9).toFixed(2)} G | ${r.weights} | ${r.seconds.toFixed(2)} | ${r.mParamsPerS.toFixed(0)} | ${r.cpuSeconds.toFixed(2)} | ${r.peakRssMiB.toFixed(0)} | ${(r.relL2Mean * 100).toFixed(2)}% (${(r.relL2Max * 100).toFixed(2)}%) | ${r.gbRead.toFixed(2)} | ${r.gbWritten.toFixed(2)} | ${r.loadBefore.toFixed(2)} -> ${r.loadAfter.toFixed(2)} |`);
  }
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'quantize-weights.json'), JSON.stringify({ date: new Date().toISOString(), machine, gb, chunkMiB, rows }, null, 2) + '\n');
}

await main();
