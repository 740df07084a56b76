/**
 * Modules of one network in one activation memory (runtime/gpu/model.ts arenaFrom, as the GPU executor
 * loads a GraphRef's variants) against the same modules each in its own arena, on the GPU host: for
 * every role of a pipeline artifact with more than one module (the transformer's batch-2, text-length
 * and size modules; the VAE decoder's sizes), every module runs on seeded inputs in turn, twice over
 * with the same Tensor objects (the second round stages only what another module overwrote), and
 * each output must equal, bit for bit, the output of its module loaded alone. Prints one JSON line a
 * role (device memory held by each configuration); exits 1 on any difference.
 *
 *   tsx test/gpu/shared-arena.ts PIPELINE_ARTIFACT [--synthetic-weights 42]
 *
 * Bundled for the GPU host by esbuild like runtime/gpu/pack.ts (no Node there).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { bitsOf } from '../../runtime/executor/bf16.ts';
import { largestArena, moduleDirs, parseValueType } from '../../runtime/executor/gpu.ts';
import { type Model, loadModel } from '../../runtime/gpu/model.ts';
import { graphRef, loadManifest } from '../../runtime/pipeline/manifest.ts';
import { seededInputs } from './seeded-inputs.ts';

const { values: v, positionals } = parseArgs({ allowPositionals: true, options: { 'synthetic-weights': { type: 'string', default: '42' } } });
if (!positionals[0]) throw new Error('usage: shared-arena.ts PIPELINE_ARTIFACT [--synthetic-weights SEED]');
const manifest = loadManifest(join(positionals[0], 'manifest.json'));
const seed = Number(v['synthetic-weights']);
const quiet = () => undefined;

/** Seeded inputs of a module's shapes (its manifest's inputs). */
function inputsOf(dir: string, s: number): Record<string, Tensor> {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { inputs: Record<string, string> };
  return seededInputs(Object.entries(m.inputs).map(([name, type]) => parseValueType(name, type)), s);
}
const bytesOf = (t: Tensor) => (t.dtype === 'bfloat16' ? Buffer.from(bitsOf(t).buffer, bitsOf(t).byteOffset, bitsOf(t).byteLength) : Buffer.from((t.data as Uint8Array).buffer, (t.data as Uint8Array).byteOffset, (t.data as Uint8Array).byteLength));

let failed = false;
for (const role of ['transformer', 'vaeDecoder'] as const) {
  const ref = graphRef(manifest, role);
  const dirs = moduleDirs(ref);
  if (dirs.length < 2) continue;
  const sets = dirs.map((d, k) => inputsOf(d, 100 + k));
  const load = (shared: boolean): Model[] => {
    const first = loadModel(dirs[0], { syntheticWeights: seed, bf16Bits: true, log: quiet, ...(shared ? { arenaBytes: largestArena(dirs) } : {}) });
    return [first, ...dirs.slice(1).map((d) => loadModel(d, { syntheticWeights: seed, bf16Bits: true, log: quiet, weightsFrom: first, ...(shared ? { arenaFrom: first } : {}) }))];
  };
  // Each module alone (its own arena): the reference outputs.
  const alone = load(false);
  const want = alone.map((m, k) => m.run(sets[k]));
  const aloneBytes = alone.reduce((a, m) => a + m.memory.deviceUsedBytes, 0);
  for (const m of alone.reverse()) m.close();
  // In one arena: round one, then round two with the same Tensors.
  const shared = load(true);
  const sharedBytes = shared.reduce((a, m) => a + m.memory.deviceUsedBytes, 0);
  const differ: string[] = [];
  for (let round = 1; round <= 2; round++) {
    shared.forEach((m, k) => {
      const got = m.run(sets[k]);
      for (const [name, t] of Object.entries(want[k])) if (!bytesOf(got[name]).equals(bytesOf(t))) differ.push(`round ${round} ${dirs[k]} ${name}`);
    });
  }
  for (const m of shared.reverse()) m.close();
  failed ||= differ.length > 0;
  console.log(JSON.stringify({ role, modules: dirs.length, runs: 2 * dirs.length, differ, deviceGiB: { alone: +(aloneBytes / 2 ** 30).toFixed(2), shared: +(sharedBytes / 2 ** 30).toFixed(2) } }));
}
process.exitCode = failed ? 1 : 0;
