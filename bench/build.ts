/**
 * Build-time benchmark (issue 5): compiles flux2_dev at 1024x1024 for a target twice with an empty
 * kernel cache — cold (every kernel through nvcc), then warm (every unit from the cache) — and
 * prints the build and whole-compile seconds. Needs nvcc (the export is bundled: models/full).
 *
 *   npx tsx bench/build.ts [h100|b200]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileModel } from '../compiler/compile.ts';
import { fullModelPath } from '../compiler/full-models.ts';

const target = process.argv[2] ?? 'h100';
const model = fullModelPath('flux2_dev');
const cache = mkdtempSync(join(tmpdir(), 'kernel-cache-'));
process.env.DC_KERNEL_CACHE = cache;
const out = mkdtempSync(join(tmpdir(), 'build-bench-'));
console.log(`flux2_dev 1024x1024, ${target}, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} x ${cpus()[0]?.model}\n`);
console.log('| run | kernels | units from cache | spills | build s | compile s |\n| --- | ---: | ---: | ---: | ---: | ---: |');
for (const run of ['cold', 'warm']) {
  const s = await compileModel({ model, target, size: '1024x1024', shape: { txt_tokens: 512 }, out: join(out, run) });
  console.log(`| ${run} | ${s.build!.kernels} | ${s.build!.cached} | ${s.build!.spills} | ${s.build!.seconds.toFixed(2)} | ${s.seconds.toFixed(2)} |`);
}
rmSync(cache, { recursive: true, force: true });
rmSync(out, { recursive: true, force: true });
