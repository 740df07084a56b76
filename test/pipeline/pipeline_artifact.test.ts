/**
 * compiler/pipeline-artifact.ts (without nvcc: --no-build): a Qwen-Image description whose VAE
 * statistics are .npy files compiles into an artifact holding the three module artifacts, the
 * graphs, the tokenizer and the statistics, each hashed in manifest.json (the tokenizer's checked on load,
 * a graph folder's when an executor reads it); the artifact generates the
 * same image bytes as the description it came from; a failing module leaves the previous artifact
 * untouched and no staging folder behind; graph-only flags are refused for a pipeline.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../compiler/npy.ts';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { compileCli } from '../helpers/cli.ts';
import { CompileError } from '../../compiler/errors.ts';
import { compilePipeline } from '../../compiler/pipeline-artifact.ts';
import { LATENTS_MEAN } from '../../models/qwen_image/latents.ts';
import { cpuExecutorFactory } from '../../runtime/executor/ort.ts';
import { ROOT } from '../../runtime/paths.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { graphRef, loadManifest } from '../../runtime/pipeline/manifest.ts';
import { type WeightEntry, sameWeight } from '../../compiler/weights-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'pipeline-artifact-'));
const tiny = JSON.parse(readFileSync(join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'), 'utf8'));
writeNpy(join(dir, 'mean.npy'), new Tensor('float32', [16], Float32Array.from(LATENTS_MEAN, (v) => v + 0.25)));
const description = join(dir, 'qwen.pipeline.json');
const graph = (rel: string) => join(ROOT, 'models', 'qwen_image', rel);
writeFileSync(description, JSON.stringify({
  ...tiny, tokenizer: graph(tiny.tokenizer),
  graphs: Object.fromEntries(Object.entries(tiny.graphs as Record<string, string>).map(([k, v]) => [k, graph(v)])),
  vae: { ...tiny.vae, latentsMean: 'mean.npy' },
}));
const out = join(dir, 'artifact');

describe('compilePipeline', () => {
  it('writes the modules, graphs, tokenizer and statistics, hashed; sums the contract keys', async () => {
    const s = await compilePipeline({ pipeline: description, out, build: false, precision: 'bf16' });
    expect(s).toMatchObject({ artifact: out, model: 'qwen_image', name: 'qwen-image-tiny', target: 'h100', precision: 'bf16', sizes: ['64x64'], verify: null, build: null });
    expect(s.nodes.input).toBe(s.modules.textEncoder.nodes.input + s.modules.transformer.nodes.input + s.modules.vaeDecoder.nodes.input);
    expect(s.launches).toBe(Object.values(s.modules).reduce((a, m) => a + m.launches, 0));
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.vae.latentsMean).toBe('stats/latentsMean-mean.npy');
    expect(Object.keys(m.files).sort()).toEqual([
      'onnx/text_encoder/model.onnx', 'onnx/text_encoder/model.onnx.data', 'onnx/transformer/model.onnx', 'onnx/transformer/model.onnx.data',
      // The VAE decoder exported for 16 x 16 latents, re-specialised to the 64 x 64 image's 32 x 32 (compiler/ir/resize.ts).
      'onnx/vae_decoder/model.64x64.onnx', 'onnx/vae_decoder/model.onnx', 'onnx/vae_decoder/model.onnx.data', 'stats/latentsMean-mean.npy', 'tokenizer/tokenizer.json',
    ]);
    for (const d of ['text_encoder', 'transformer', 'vae_decoder']) expect(existsSync(join(out, d, 'manifest.json'))).toBe(true);
    const loaded = loadManifest(out);
    expect(loaded.modules?.transformer).toBe(join(out, 'transformer'));
    // batchedCfg (the tiny Qwen-Image description has it): the transformer again at batch 2, beside the
    // batch-1 one, which the GPU executor gets as the transformer's `batched` module.
    expect(tiny.batchedCfg).toBe(true);
    expect(m.cfgModule).toBe('transformer_cfg');
    expect(s.cfgModule).toMatchObject({ artifact: 'transformer_cfg', launches: s.modules.transformer.launches });
    const cfg = JSON.parse(readFileSync(join(out, 'transformer_cfg', 'manifest.json'), 'utf8'));
    expect([cfg.batch, cfg.inputs.hidden_states, cfg.inputs.encoder_hidden_states_mask]).toEqual([2, 'float32[2,256,64]', 'int64[2,24]']);
    expect(graphRef(loaded, 'transformer').batched).toBe(join(out, 'transformer_cfg'));
    // Its learned weights are the transformer's (described, not written: one copy on disk and on the GPU).
    const own = JSON.parse(readFileSync(join(out, 'transformer', 'manifest.json'), 'utf8')).weights;
    const byName = new Map((own.tensors as WeightEntry[]).map((t) => [t.name, t]));
    const learned = (cfg.weights.tensors as WeightEntry[]).filter((t) => t.learned);
    expect(learned.length).toBeGreaterThan(10);
    for (const t of learned) expect([t.name, t.shared, t.sections, sameWeight(t, byName.get(t.name)!)]).toEqual([t.name, true, {}, true]);
    expect(cfg.weights.bytes).toBeLessThan(own.bytes / 100);
    expect(graphRef(loaded, 'vaeDecoder').batched).toBeUndefined();
    // textLengths (the tiny description has [16]): the transformer and its batch-2 module again for a
    // 16-token text (compiler/ir/resequence.ts), over the transformer's weights too; the GPU executor gets them as variants.
    expect(tiny.textLengths).toEqual([16]);
    expect(m.textModules).toEqual([{ length: 16, module: 'transformer_t16', cfgModule: 'transformer_t16_cfg' }]);
    expect(s.textModules?.map((t) => [t.length, t.artifact, t.cfg?.artifact])).toEqual([[16, 'transformer_t16', 'transformer_t16_cfg']]);
    for (const [d, batch] of [['transformer_t16', 1], ['transformer_t16_cfg', 2]] as const) {
      const t = JSON.parse(readFileSync(join(out, d, 'manifest.json'), 'utf8'));
      expect([t.inputs.encoder_hidden_states, t.inputs.encoder_hidden_states_mask, t.inputs.hidden_states]).toEqual([`float32[${batch},16,192]`, `int64[${batch},16]`, `float32[${batch},256,64]`]);
      // Shared where the transformer holds the same entry; the text RoPE tables, 16 rows long here, are its own.
      const learnedHere = (t.weights.tensors as WeightEntry[]).filter((w) => w.learned);
      expect(learnedHere.filter((w) => !w.shared).map((w) => w.shape[0])).toEqual(learnedHere.filter((w) => !w.shared).map(() => 16));
      expect(learnedHere.filter((w) => w.shared).every((w) => sameWeight(w, byName.get(w.name)!))).toBe(true);
      expect(learnedHere.filter((w) => w.shared).length).toBeGreaterThan(10);
    }
    expect(graphRef(loaded, 'transformer').variants).toEqual([{ compiled: join(out, 'transformer_t16'), batched: join(out, 'transformer_t16_cfg') }]);
    expect(loaded.compiled).toEqual({ target: 'h100', arch: 'sm_90a', precision: 'bf16' });
    expect(readdirSync(dir).filter((f) => f.includes('staging') || f.includes('partial'))).toEqual([]);
  });

  it('the artifact generates the same bytes as its description (the .npy statistics included)', async () => {
    const [a, b, plain] = await Promise.all([out, description, join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json')].map((p) => loadPipeline(p, cpuExecutorFactory)));
    const req = { prompt: 'a red fox', size: { width: 64, height: 64 }, steps: 2, guidanceScale: 4, seed: 9, negativePrompt: ' ' };
    const [x, y, z] = [await a.generate(req), await b.generate(req), await plain.generate(req)];
    expect(Buffer.from(x.rgb).equals(Buffer.from(y.rgb))).toBe(true);
    expect(Buffer.from(x.rgb).equals(Buffer.from(z.rgb))).toBe(false); // the shifted mean from mean.npy was used
    await Promise.all([a.release(), b.release(), plain.release()]);
  });

  it('the copied files\' hashes: the tokenizer\'s checked on load, each graph folder\'s when an executor reads it (GraphRef.verify), once', async () => {
    const bad = join(dir, 'damaged');
    cpSync(out, bad, { recursive: true });
    const flip = (rel: string) => { const p = join(bad, rel); const b = readFileSync(p); b[100] ^= 1; writeFileSync(p, b); };
    flip('onnx/transformer/model.onnx.data');
    const m = loadManifest(bad); // the GPU executor's path: no ONNX file read or hashed
    expect(m.onnxHashes?.size).toBe(7);
    const damaged = new RegExp(`${join(bad, 'manifest.json')}: 'onnx/transformer/model\\.onnx\\.data' does not match its sha256 in the manifest \\(the artifact is damaged; compile it again\\)$`);
    expect(() => graphRef(m, 'transformer').verify!()).toThrow(damaged);
    graphRef(m, 'textEncoder').verify!();
    expect(m.onnxHashes?.size).toBe(5); // the text encoder's two files checked, and not again
    await expect(loadPipeline(loadManifest(bad), cpuExecutorFactory)).rejects.toThrow(damaged); // the CPU executor checks before it reads
    flip('tokenizer/tokenizer.json');
    expect(() => loadManifest(bad)).toThrow(/'tokenizer\/tokenizer\.json' does not match its sha256/);
  });

  it('a module that fails to compile leaves the previous artifact as it was, and no staging folder', async () => {
    const before = readFileSync(join(out, 'manifest.json'), 'utf8');
    const broken = join(dir, 'broken.pipeline.json');
    const notOnnx = join(dir, 'not-a-model.onnx');
    writeFileSync(notOnnx, 'this is not protobuf');
    writeFileSync(broken, JSON.stringify({ ...JSON.parse(readFileSync(description, 'utf8')), graphs: { ...JSON.parse(readFileSync(description, 'utf8')).graphs, vaeDecoder: notOnnx } }));
    await expect(compilePipeline({ pipeline: broken, out, build: false })).rejects.toThrow(CompileError);
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(before);
    expect(readdirSync(dir).filter((f) => f.includes('staging') || f.includes('partial'))).toEqual([]);
  });

  it('textLengths at or above the export\'s text length, or for Flux.2, are refused naming the key; the previous artifact stays', async () => {
    const base = JSON.parse(readFileSync(description, 'utf8'));
    const file = join(dir, 'lengths.pipeline.json');
    const target = join(dir, 'lengths');
    for (const lengths of [[16, 24], [40]]) {
      writeFileSync(file, JSON.stringify({ ...base, textLengths: lengths }));
      await expect(compilePipeline({ pipeline: file, out: target, build: false, precision: 'bf16' })).rejects.toThrow(/textLengths: expected lengths below the transformer's text length \(24\), found (24|40)/);
    }
    writeFileSync(file, JSON.stringify({ ...base, family: 'flux2', textLengths: [16] }));
    await expect(compilePipeline({ pipeline: file, out: target, build: false, precision: 'bf16' })).rejects.toThrow(/textLengths: expected a qwen_image pipeline .*found flux2/);
    expect(existsSync(target)).toBe(false);
  });

  it('per-network shapes reach the compile of that network and travel in the manifest', async () => {
    const base = JSON.parse(readFileSync(description, 'utf8'));
    const withShapes = join(dir, 'shapes.pipeline.json');
    writeFileSync(withShapes, JSON.stringify({ ...base, shapes: { transformer: { 'hidden_states.1': 256 } } }));
    const target = join(dir, 'shaped');
    await compilePipeline({ pipeline: withShapes, out: target, build: false, precision: 'bf16' });
    expect(JSON.parse(readFileSync(join(target, 'manifest.json'), 'utf8')).shapes).toEqual({ transformer: { 'hidden_states.1': 256 } });
    expect(loadManifest(target).shapes).toEqual({ transformer: { 'hidden_states.1': 256 } });
    writeFileSync(withShapes, JSON.stringify({ ...base, shapes: { transformer: { 'hidden_states.1': 128 } } }));
    await expect(compilePipeline({ pipeline: withShapes, out: target, build: false })).rejects.toThrow(/hidden_states.1=256 \(a static dim of input 'hidden_states'\)/);
    for (const [shapes, message] of [
      [{ vae: {} }, "'shapes.vae' should be one of textEncoder, transformer, vaeDecoder"],
      [{ transformer: { img_tokens: 0 } }, "'shapes.transformer.img_tokens' should be a positive integer, found 0"],
      [{ transformer: [4096] }, "'shapes.transformer' should be an object of dim name -> size"],
    ] as const) {
      writeFileSync(withShapes, JSON.stringify({ ...base, shapes }));
      expect(() => loadManifest(withShapes)).toThrow(message);
    }
  });

  it('graph-only flags are refused for a pipeline, in one line', async () => {
    const { codes, errors } = await compileCli([description, '--verify', dir, '--out', join(dir, 'x')]);
    expect(codes).toEqual([1]);
    expect(errors).toEqual(['error: --verify: expected a flag that applies to a whole pipeline (this one applies to one graph: compile that MODEL.onnx alone), found --verify with a pipeline']);
  });
});
