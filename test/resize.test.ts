/**
 * Image-size re-specialisation (compiler/ir/resize.ts over respecialise.ts, `npx compile --size`):
 * each tiny network, exported at a 16 x 16 token grid (VAE decoders: 16 x 16 latents), re-specialised
 * to 80 x 48 (a 20 x 12 token grid, 40 x 24 latents) and to its portrait transpose 48 x 80, computes
 * what PyTorch's module computes at that size (test/fixtures/pipeline_reference/modules_WxH,
 * models/reference/make_reference.py) — on the
 * reference executor, and as written back to ONNX (compiler/onnx/export.ts) under onnxruntime. Also:
 * at the export's own size the graph is returned as it is, the full-size exports re-specialise to
 * 1024 x 768, and what cannot be re-specialised is refused, naming it.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runReference } from '../compiler/exec/reference.ts';
import { type Graph, type TensorType } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { resize } from '../compiler/ir/resize.ts';
import { walkReshape } from '../compiler/ir/respecialise.ts';
import { Tensor } from '../compiler/ir/tensor.ts';
import { readNpy } from '../compiler/npy.ts';
import { writeRespecialisedOnnx } from '../compiler/onnx/export.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { ROOT } from '../runtime/paths.ts';
import { runOrt, tinyDir } from './helpers/fixtures.ts';
import { fullModelPath } from '../compiler/full-models.ts';
import { compileModel } from '../compiler/compile.ts';
import onnxProto from 'onnx-proto';
import { relL2 } from './helpers/numerics.ts';

const refOf = (size: string) => join(ROOT, 'test', 'fixtures', 'pipeline_reference', `modules_${size}`);
const REF = refOf('80x48');
const LATENT = { height: 24, width: 40 };
const load = (name: string) => importOnnx(join(tinyDir(name), 'model.onnx')).graph;
const inputsOf = (name: string, ref = REF) => Object.fromEntries(readdirSync(join(ref, name)).filter((f) => f.startsWith('input_')).map((f) => [f.slice(6, -4), readNpy(join(ref, name, f))]));

function tensorRelL2(got: Tensor, want: Tensor): number {
  expect(got.shape).toEqual(want.shape);
  return relL2(got.toFloat32(), want.toFloat32());
}

const NETWORKS = ['flux2', 'qwen_image', 'flux2_vae_decoder', 'qwen_image_vae_decoder'] as const;

describe('resize: the tiny networks at 80x48 (landscape) and 48x80 (portrait) against PyTorch', () => {
  const cases = ['80x48', '48x80'].flatMap((size) => NETWORKS.map((name) => [name, size] as const));
  it.each(cases)('%s at %s: reference executor and onnxruntime both match', async (name, size) => {
    const [w, h] = size.split('x').map(Number), ref = refOf(size);
    const g = load(name);
    const sized = resize(g, { width: w / 2, height: h / 2 }, `--size ${size}`); // the tiny VAEs' factor 2
    const want = readNpy(join(ref, name, 'output_sample.npy'));
    const got = Object.values(runReference(inferTypes(sized).graph, inputsOf(name, ref)))[0];
    expect(tensorRelL2(got, want)).toBeLessThan(1e-5);
    const out = join(tinyDir(name), `model.test-${process.pid}-${size}.onnx`); // beside its external data
    try {
      writeRespecialisedOnnx(join(tinyDir(name), 'model.onnx'), sized, out);
      const ort = Object.values(await runOrt(out, inputsOf(name, ref)))[0];
      expect(tensorRelL2(ort, want)).toBeLessThan(1e-5);
    } finally {
      rmSync(out, { force: true });
    }
    // and the size matters: the export's own graph cannot take these inputs
    expect(() => runReference(inferTypes(g).graph, inputsOf(name, ref))).toThrow();
  });

  it("at the export's own size a graph is returned as it is", () => {
    for (const [name, latent] of [['qwen_image', { height: 32, width: 32 }], ['flux2_vae_decoder', { height: 16, width: 16 }]] as const) {
      const g = load(name);
      expect(resize(g, latent, '--size 64x64')).toBe(g);
    }
  });

  it('a Reshape regroups changed factors along grids, and refuses a split of a changed length along none', () => {
    const grid = { old: [16, 16], now: [12, 20] };
    expect(walkReshape([1, 256, 64], [1, 240, 64], [1, 256, 4, 16], [grid])).toMatchObject({ dims: [1, 240, 4, 16] });
    expect(walkReshape([1, 64, 16, 16], [1, 64, 24, 40], [1, 16, 1024], [])).toMatchObject({ dims: [1, 16, 3840], merged: [{ old: [4, 16, 16], now: [4, 24, 40] }] });
    expect(walkReshape([1, 16, 1024], [1, 16, 3840], [1, 64, 16, 16], [{ old: [4, 16, 16], now: [4, 24, 40] }])).toMatchObject({ dims: [1, 64, 24, 40] });
    expect(walkReshape([1, 256, 64], [1, 240, 64], [1, 16, 16, 64], [])).toMatch(/changed length 256 \(now 240\) split at 16/);
  });

  it('refuses what it cannot re-specialise, naming it', () => {
    expect(() => resize(load('qwen_image'), { height: 25, width: 40 }, '--size 50x48')).toThrow(/--size 50x48: expected a latent size of whole 2 x 2 patches/);
    expect(() => resize(load('mistral_text_encoder'), LATENT, '--size 80x48')).toThrow(/expected a VAE decoder .* or a transformer/);
  });
});

describe('resize: the full-size exports (bundled, structure only) at 1024 x 768', () => {
  const types = (g: Graph, names: readonly string[]) => names.map((n) => (inferTypes(g).graph.types.get(n) as TensorType).shape.join('x'));
  it('Qwen-Image: 3072 image tokens in, 3072 out; its VAE decoder: 96 x 128 latents to a 768 x 1024 image', () => {
    const q = importOnnx(fullModelPath('qwen_image')).graph;
    const sized = resize(q, { height: 96, width: 128 }, '--size 1024x768');
    expect(types(sized, ['hidden_states', ...sized.outputs])).toEqual(['1x3072x64', '1x3072x64']);
    const vae = importOnnx(fullModelPath('qwen_image_vae_decoder')).graph;
    const v = resize(vae, { height: 96, width: 128 }, '--size 1024x768');
    expect(types(v, v.outputs)).toEqual(['1x3x1x768x1024']);
  });
  it("Flux.2's VAE decoder: 96 x 128 latents to a 768 x 1024 image", () => {
    const vae = importOnnx(fullModelPath('flux2_vae_decoder')).graph;
    const v = resize(vae, { height: 96, width: 128 }, '--size 1024x768');
    expect(types(v, v.outputs)).toEqual(['1x3x768x1024']);
  });
});

// A hand-built graph: a GatherND whose traced indices are not an upsampling grid is refused.
describe('npx compile --size on a VAE decoder alone', () => {
  it('reads the decoder\'s own scale factor (the tiny ones\' 2: 80x48 is 40 x 24 latents; the real ones\' 8), a pipeline\'s given one winning', async () => {
    const out = mkdtempSync(join(tmpdir(), 'vae-size-'));
    const tiny = join(tinyDir('qwen_image_vae_decoder'), 'model.onnx');
    expect((await compileModel({ model: tiny, size: '80x48', build: false, out: join(out, 'a') })).shapes.latents).toBe('float32[1,16,1,24,40]');
    expect((await compileModel({ model: tiny, size: '160x96', vaeScaleFactor: 4, build: false, out: join(out, 'b') })).shapes.latents).toBe('float32[1,16,1,24,40]');
    await expect(compileModel({ model: tiny, size: '82x48', build: false, out: join(out, 'c') })).rejects.toThrow(/positive multiples of 4 \(2 x the VAE's scale factor 2\)/);
  }, 60_000);
});

describe('resize: traced gathers', () => {
  it('refuses a GatherND over the latents with indices other than a nearest-upsampling grid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'resize-gather-'));
    const idx = Array.from({ length: 4 * 4 }, (_, t) => [Math.floor(t / 4) % 2, t % 4 % 2]).flat(); // a tiling, not floor(i / 2)
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.encode({
      irVersion: 8, opsetImport: [{ domain: '', version: 18 }],
      graph: {
        name: 'g', initializer: [{ name: 'idx', dataType: 7, dims: [4, 4, 2], int64Data: idx }],
        node: [{ opType: 'Transpose', input: ['latents'], output: ['t'], attribute: [{ name: 'perm', type: 7, ints: [2, 3, 0, 1] }] },
          { opType: 'GatherND', input: ['t', 'idx'], output: ['y'] }],
        input: [{ name: 'latents', type: { tensorType: { elemType: 1, shape: { dim: [1, 1, 2, 2].map((d) => ({ dimValue: d })) } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      },
    }).finish();
    writeFileSync(join(dir, 'model.onnx'), model);
    const g = importOnnx(join(dir, 'model.onnx')).graph;
    expect(() => resize(g, { height: 4, width: 2 }, '--size 16x32')).toThrow(/GatherND .*--size 16x32.*nearest upsampling.*found indices other than the nearest-upsampling grid/);
  });
});
