/**
 * The warpgroup conv kernels of a VAE cases folder, rendered into one unit for a plain sm_90 build:
 * without the sm_90a features the template takes its mma.sync path (the sm_100a code), which an
 * H100 can then run on the same cases (bench/results/vae-wgmma-2026-11-26.md):
 *
 *   npx tsx bench/gpu/conv-fallback.ts CASES_DIR OUT_DIR      writes OUT_DIR/fallback.cu
 *   nvcc -cubin -gencode arch=compute_90,code=sm_90 -O3 OUT_DIR/fallback.cu -o FB/kernels.cubin
 *   FB/cases.txt: CASES_DIR's lines of those kernels; (GPU) test/gpu/run_each.sh FB OUT ./harness,
 *   then compare OUT/outputs.bin with the sm_90a run's samples of the same cases.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { convDescriptor, renderConv } from '../../compiler/codegen/conv.ts';
import { renderUnit } from '../../compiler/codegen/render.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { ROOT } from '../../compiler/paths.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy } from '../../passes/quantize/policy.ts';
import { VAE_TINY, vaeFull } from '../../test/gpu/vae-cases.ts';
const [casesDir, out] = process.argv.slice(2);
const lines = readFileSync(join(casesDir, 'cases.txt'), 'utf8').split('\n').filter(Boolean);
const names = new Set(lines.map((l) => l.split(' ')[0]));
const files = [...VAE_TINY.map((m) => join(ROOT, 'models', 'tiny', m, 'model.onnx')), ...vaeFull()];
const kernels = new Map();
for (const f of files) {
  const g = runPipeline(inferTypes(importOnnx(f).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
  for (const n of g.nodes.filter((x) => x.op === 'FusedConv')) {
    const d = convDescriptor(g, n);
    const k = renderConv(d);
    if (d.wg && names.has(k.name)) kernels.set(k.name, k);
  }
}
writeFileSync(join(out, 'fallback.cu'), renderUnit([...kernels.values()]));
console.log(`${kernels.size} warpgroup conv kernels of ${names.size} cases`);
