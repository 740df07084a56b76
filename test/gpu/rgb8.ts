/**
 * RGB8 on the device against the host's table, on the GPU host: a VAE decoder module (synthetic
 * weights) runs once through run() (the image copied back, runtime/pipeline/image.ts rgb8 on the
 * host) and once through rgb8() (runtime/gpu/support.cu dc_rgb8); the bytes must be equal. Prints
 * one JSON line with both wall times; exits 1 on a difference.
 *
 *   tsx test/gpu/rgb8.ts VAE_MODULE_DIR [--synthetic-weights 42]
 */
import { parseArgs } from 'node:util';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { gpuExecutorFactory } from '../../runtime/executor/gpu.ts';
import { loadModel } from '../../runtime/gpu/model.ts';
import { rgb8 } from '../../runtime/pipeline/image.ts';
import { GaussianNoise } from '../../runtime/pipeline/noise.ts';

const { values: v, positionals } = parseArgs({ allowPositionals: true, options: { 'synthetic-weights': { type: 'string', default: '42' } } });
const dir = positionals[0];
if (!dir) throw new Error('usage: rgb8.ts VAE_MODULE_DIR [--synthetic-weights SEED]');
const exec = await gpuExecutorFactory({ loadModel: (d, o) => loadModel(d, o) }, { syntheticWeights: Number(v['synthetic-weights']) })({ role: 'vaeDecoder', onnx: dir, compiled: dir });
if (!exec.rgb8) throw new Error(`${dir}: no device RGB8 (not an image graph, or its support unit predates dc_rgb8: recompile)`);
const input = exec.inputs[0];
const shape = input.shape.map((d) => (typeof d === 'number' ? d : 1));
const latents = { [input.name]: new Tensor('float32', shape, new GaussianNoise(5).fill(shape.reduce((a, b) => a * b, 1))) };
const out = exec.outputs[0].shape.map(Number);
const [H, W] = out.slice(-2);
await exec.run(latents); await exec.rgb8(latents); // warm-up (graph capture)
let t = performance.now();
const host = rgb8(Object.values(await exec.run(latents))[0], H, W);
const hostMs = performance.now() - t;
t = performance.now();
const device = await exec.rgb8(latents);
const deviceMs = performance.now() - t;
let differ = 0;
for (let i = 0; i < host.length; i++) if (host[i] !== device[i]) differ++;
const levels = new Set(device).size;
console.log(JSON.stringify({ module: dir, bytes: device.length, differ, levels, hostMs, deviceMs }));
await exec.release();
process.exitCode = differ || device.length !== 3 * H * W ? 1 : 0;
