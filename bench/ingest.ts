/**
 * Ingest benchmark: for each bundled full-size graph (models/full, structure only), the wall
 * time and peak RSS of import + specialise + infer + the pass pipeline, each graph in a fresh
 * child process so peak RSS is that graph's alone. Goal (issue 2): <= 15 s and <= 2 GiB per graph on
 * the 2-core CPU machine. Prints a markdown table and writes bench/results/ingest.json.
 *
 *   npm run bench:ingest            (all six graphs)
 *   npm run bench:ingest -- NAME    (one graph)
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from '../compiler/compile.ts';
import { FULL_MODELS, fullModelPath } from '../compiler/full-models.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { specialise } from '../compiler/ir/specialise.ts';
import { externalReads } from '../compiler/onnx/constants.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { runPipeline } from '../passes/pipeline.ts';

const GRAPHS = FULL_MODELS;

interface Row { graph: string; nodesIn: number; nodesOut: number; seconds: number; peakRssMiB: number; weightReads: number }

function measureOne(name: string): Row {
  const t0 = performance.now();
  const { graph } = importOnnx(fullModelPath(name));
  const result = runPipeline(inferTypes(specialise(graph, GRAPHS[name])));
  const seconds = (performance.now() - t0) / 1000;
  return {
    graph: name, nodesIn: graph.nodes.length, nodesOut: result.graph.nodes.length, seconds,
    peakRssMiB: process.resourceUsage().maxRSS / 1024, weightReads: externalReads.count,
  };
}

function main(): void {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    console.log(JSON.stringify(measureOne(args[1])));
    return;
  }
  const names = args.length ? args : Object.keys(GRAPHS);
  const rows: Row[] = [];
  for (const name of names) {
    if (!GRAPHS[name]) throw new Error(`unknown graph ${name}; one of ${Object.keys(GRAPHS).join(', ')}`);
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', name], { encoding: 'utf8', cwd: ROOT });
    if (child.status !== 0) throw new Error(`${name}: ${child.stderr}`);
    rows.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!));
  }
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`;
  console.log(`ingest + specialise + infer + passes, ${new Date().toISOString().slice(0, 10)}, ${machine}\n`);
  console.log('| graph | nodes in | nodes out | wall s | peak RSS MiB | weight reads |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.graph} | ${r.nodesIn} | ${r.nodesOut} | ${r.seconds.toFixed(2)} | ${r.peakRssMiB.toFixed(0)} | ${r.weightReads} |`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'ingest.json'), JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2) + '\n');
}

main();
