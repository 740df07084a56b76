/**
 * Reference data for a network re-specialised to an image size, for the GPU host's run-cli --reference:
 * the export re-specialised as `npx compile --size` does (compiler/ir/resize.ts; latents WxH over a VAE
 * decoder's own scale factor, the tiny ones' 2, else 8), seeded
 * inputs (float32, standard normal), and onnxruntime-node's outputs (CPU) on
 * the re-specialised graph written back as ONNX — the path the CPU executor runs, checked against PyTorch
 * at 80x48 (test/resize.test.ts). Sizes whose latent or token grids leave partial tiles everywhere
 * (a 152 x 104 latent: 1216x832 for the real VAEs, 304x208 for the tiny ones) check the compiled kernels' edges against it.
 *
 *   npx tsx bench/gpu/size-reference.ts MODEL.onnx WxH OUTDIR [--seed 1]
 *
 * Writes OUTDIR/input_<name>.npy and OUTDIR/output_<name>.npy (the tiny fixtures' layout).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { decoderScale } from '../../compiler/compile.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { resize } from '../../compiler/ir/resize.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { writeNpy } from '../../compiler/npy.ts';
import { respecialisedOnnx } from '../../compiler/onnx/export.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { OrtExecutor } from '../../runtime/executor/ort.ts';
import { cachedGraph } from '../../runtime/executor/safe_softmax.ts';
import { parseSize } from '../../runtime/pipeline/manifest.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';

const { values: v, positionals: [model, sizeArg, out] } = parseArgs({ allowPositionals: true, options: { seed: { type: 'string', default: '1' } } });
if (!model || !sizeArg || !out) throw new Error('usage: size-reference.ts MODEL.onnx WxH OUTDIR [--seed N]');
const size = parseSize(sizeArg);
if (!size) throw new Error(`size: expected WxH, found '${sizeArg}'`);
const graph = importOnnx(model).graph;
const scale = decoderScale(graph) ?? 8;
const resized = resize(graph, { width: size.width / scale, height: size.height / scale }, `size ${sizeArg}`);
inferTypes(resized);
const onnx = resized === graph ? model : cachedGraph(model, `size ${sizeArg}`, () => respecialisedOnnx(model, resized));

const noise = new GaussianNoise(Number(v.seed));
const inputs: Record<string, Tensor> = {};
for (const name of resized.inputs) {
  const t = resized.types.get(name) as unknown as { dtype: Tensor['dtype']; shape: number[] };
  if (t.dtype !== 'float32') throw new Error(`input '${name}': ${t.dtype}; only float32 inputs are drawn here (the tiny exports')`);
  inputs[name] = new Tensor('float32', t.shape, noise.fill(t.shape.reduce((a, d) => a * d, 1)));
}
const outputs = await (await OrtExecutor.load(onnx)).run(inputs);
mkdirSync(out, { recursive: true });
for (const [name, t] of Object.entries(inputs)) writeNpy(join(out, `input_${name}.npy`), t);
for (const [name, t] of Object.entries(outputs)) writeNpy(join(out, `output_${name}.npy`), t);
console.log(`${model} at ${sizeArg}: inputs ${Object.entries(inputs).map(([n, t]) => `${n} [${t.shape}]`).join(', ')}; outputs ${Object.entries(outputs).map(([n, t]) => `${n} [${t.shape}]`).join(', ')} -> ${out}`);
