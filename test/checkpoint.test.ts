/**
 * `--weights CHECKPOINT` (compiler/onnx/checkpoint.ts, safetensors.ts, derived-buffers.ts): a graph's
 * weights read from a safetensors checkpoint.
 *   - the header reader against files written independently (test/helpers/safetensors.ts), and each
 *     malformed file refused naming the file and the tensor;
 *   - the buffers a checkpoint lacks, computed from its config, against PyTorch's own values (the tiny
 *     Qwen-Image export holds QwenEmbedRope's tables);
 *   - the bundled full-size graphs bound to sparse checkpoints named as Hugging Face names them (the
 *     prefixes found, every initializer pointed at its tensor, extra tensors counted, the config's RoPE
 *     frequencies), and every mismatch refused naming the tensor;
 *   - a tiny model compiled from a checkpoint of its own weights (sharded, keys under a prefix): the
 *     same weights.bin as compiled from its ONNX data, and --verify against PyTorch's output passes;
 *   - the tiny Flux.2 pipeline from a diffusers-layout folder: each network from its subfolder, the
 *     tokenizer and the VAE's batch-norm statistics from it, and a folder lacking them refused.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileModel } from '../compiler/compile.ts';
import { CompileError } from '../compiler/errors.ts';
import { fullModelPath } from '../compiler/full-models.ts';
import { sha256File } from '../compiler/hash.ts';
import type { Graph } from '../compiler/ir/graph.ts';
import { bindCheckpoint } from '../compiler/onnx/checkpoint.ts';
import { loadConstant, readConstantBytes } from '../compiler/onnx/constants.ts';
import { derivedBuffer } from '../compiler/onnx/derived-buffers.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { readCheckpoint, readSafetensorsHeader } from '../compiler/onnx/safetensors.ts';
import { compilePipeline } from '../compiler/pipeline-artifact.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { graphEntries, writeSafetensors } from './helpers/safetensors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'checkpoint-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const folder = (name: string) => {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  return d;
};

describe('safetensors headers', () => {
  it('finds each tensor\'s bytes: offsets past the 8-byte length and the JSON header', () => {
    const f = join(tmp, 'a.safetensors');
    const a = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer), b = new Uint8Array([7, 0, 8, 0]);
    writeSafetensors(f, [{ key: 'x.weight', dtype: 'float32', shape: [2, 3], bytes: a }, { key: 'y', dtype: 'bfloat16', shape: [2], bytes: b }]);
    const h = readSafetensorsHeader(f);
    expect([...h.keys()]).toEqual(['x.weight', 'y']);
    const file = readFileSync(f);
    const x = h.get('x.weight')!;
    expect(x).toMatchObject({ dtype: 'float32', shape: [2, 3], length: 24 });
    expect(Buffer.compare(file.subarray(x.offset, x.offset + 24), Buffer.from(a))).toBe(0);
    const y = h.get('y')!;
    expect(y).toMatchObject({ dtype: 'bfloat16', length: 4, offset: x.offset + 24 });
  });

  it('refuses malformed files, naming the file and the tensor', () => {
    const write = (name: string, json: string, extra = 0) => {
      const f = join(tmp, name);
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
      writeFileSync(f, Buffer.concat([head, Buffer.from(json), Buffer.alloc(extra)]));
      return f;
    };
    const truncated = write('t.safetensors', JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), 8);
    expect(() => readSafetensorsHeader(truncated)).toThrow(/t\.safetensors: tensor 'w'.*bytes up to .*truncated/);
    const badLength = write('l.safetensors', JSON.stringify({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 12] } }), 12);
    expect(() => readSafetensorsHeader(badLength)).toThrow(/tensor 'w'.*16 bytes for float32\[4\].*12 bytes/);
    const badType = write('d.safetensors', JSON.stringify({ w: { dtype: 'Q4', shape: [4], data_offsets: [0, 2] } }), 2);
    expect(() => readSafetensorsHeader(badType)).toThrow(/tensor 'w'.*a dtype of F64.*found Q4/);
    expect(() => readSafetensorsHeader(write('j.safetensors', '{"w": '))).toThrow(/j\.safetensors.*JSON.*unparsable/);
    const huge = join(tmp, 'h.safetensors');
    const head = Buffer.alloc(16);
    head.writeBigUInt64LE(1n << 40n, 0);
    writeFileSync(huge, head);
    expect(() => readSafetensorsHeader(huge)).toThrow(/h\.safetensors.*header length within the file/);
    expect(() => readCheckpoint(join(tmp, 'nothing-here'))).toThrow(/nothing-here.*no such file or folder/);
    expect(() => readCheckpoint(folder('empty'))).toThrow(/empty.*holding \.safetensors files.*none/);
  });

  it('a folder of shards: every tensor once; a tensor in two shards is refused', () => {
    const d = folder('shards');
    writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), [{ key: 'a', dtype: 'float32', shape: [1] }]);
    writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), [{ key: 'b', dtype: 'float32', shape: [1] }]);
    expect([...readCheckpoint(d).keys()].sort()).toEqual(['a', 'b']);
    writeSafetensors(join(d, 'model-extra.safetensors'), [{ key: 'a', dtype: 'float32', shape: [1] }]);
    expect(() => readCheckpoint(d)).toThrow(/each tensor in one file.*'a' in .*00001-of-00002.*model-extra/);
  });
});

describe('buffers a checkpoint does not hold, from its config', () => {
  it('QwenEmbedRope\'s angle tables equal PyTorch\'s (the tiny export\'s) to the last bit of float32', () => {
    const { graph } = importOnnx(join(tinyDir('qwen_image'), 'model.onnx'));
    for (const name of ['m.pos_embed.pos_freqs', 'm.pos_embed.neg_freqs']) {
      const c = graph.constants.get(name)!;
      const torch = loadConstant(c, name).toFloat32();
      const ours = derivedBuffer(name, c, { axes_dims_rope: [8, 12, 12] }, 'ckpt')!.toFloat32();
      let worst = 0;
      for (let i = 0; i < torch.length; i++) worst = Math.max(worst, Math.abs(torch[i] - ours[i]) / Math.max(1, Math.abs(torch[i])));
      expect(worst, name).toBeLessThanOrEqual(2 ** -23 * 2); // an ulp at |x| < 4: the host's sin / cos / atan2 against torch's
      expect(() => derivedBuffer(name, c, { axes_dims_rope: [16, 56, 56] }, 'ckpt')).toThrow(/rotation angles \(axes_dims_rope \[16,56,56\]\).*float32\[4096,16\]/);
    }
  });

  it('RoPE inverse frequencies 1 / theta^(2i/d) from rope_theta, top-level or under text_config; scaled RoPE refused', () => {
    const c = { dtype: 'float32' as const, shape: [64], source: { kind: 'external' as const, path: '', offset: 0, length: 256 } };
    const v = derivedBuffer('m.rotary_emb.inv_freq', c, { text_config: { rope_theta: 1e9 } }, 'ckpt')!.toFloat32();
    expect(v[0]).toBe(1);
    expect(v[1]).toBeCloseTo(Math.exp(-Math.log(1e9) / 64), 6);
    expect(v[63]).toBeCloseTo(Math.exp((-Math.log(1e9) * 126) / 128), 12);
    expect(derivedBuffer('m.rotary_emb.inv_freq', c, { rope_theta: 1e6, rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] } }, 'ckpt')!.toFloat32()[1]).toBeCloseTo(Math.exp(-Math.log(1e6) / 64), 6);
    expect(() => derivedBuffer('m.rotary_emb.inv_freq', c, { rope_theta: 1e6, rope_scaling: { rope_type: 'yarn' } }, 'ckpt')).toThrow(/inv_freq.*without frequency scaling.*'yarn'/);
    expect(() => derivedBuffer('m.rotary_emb.inv_freq', c, undefined, 'ckpt')).toThrow(/inv_freq.*config\.json with rope_theta.*no config\.json/);
    expect(derivedBuffer('m.layers.0.mlp.up_proj.weight', c, {}, 'ckpt')).toBeUndefined();
  });
});

/** A sparse checkpoint of a full-size graph: its initializers named `keyPrefix + name less 'm.'`, and `extra` tensors beside. */
function sparseCheckpoint(dir: string, graph: Graph, keyPrefix: string, opts: { skip?: (name: string) => boolean; extra?: string[]; config?: object } = {}) {
  const entries = graphEntries(graph, (n) => keyPrefix + n.slice(2), false).filter((e) => !opts.skip?.(`m.${e.key.slice(keyPrefix.length)}`));
  const half = Math.ceil(entries.length / 2);
  writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), entries.slice(0, half));
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [...entries.slice(half), ...(opts.extra ?? []).map((key) => ({ key, dtype: 'bfloat16' as const, shape: [8] }))]);
  if (opts.config) writeFileSync(join(dir, 'config.json'), JSON.stringify(opts.config));
}

describe('the full-size graphs bound to checkpoints named as Hugging Face ships them (sparse files)', () => {
  const mistral = importOnnx(fullModelPath('mistral_small_3_1_text_encoder')).graph;
  const qwen = importOnnx(fullModelPath('qwen_image')).graph;
  const inv = (g: Graph) => [...g.constants.keys()].filter((n) => n.endsWith('inv_freq') || n.includes('pos_embed.'));

  it('Mistral Small 3.1 inside Mistral3ForConditionalGeneration: the prefixes found, the vision tower and LM head left, inv_freq from text_config', () => {
    const d = folder('mistral3');
    const extra = ['vision_tower.transformer.layers.0.attention.q_proj.weight', 'multi_modal_projector.norm.weight', 'lm_head.weight'];
    sparseCheckpoint(d, mistral, 'language_model.model.', { skip: (n) => n.endsWith('inv_freq'), extra, config: { text_config: { rope_theta: 1e9 } } });
    const b = bindCheckpoint(mistral, d);
    expect([b.namePrefix, b.keyPrefix]).toEqual(['m.', 'language_model.model.']);
    const external = [...mistral.constants.values()].filter((c) => c.source.kind === 'external').length;
    expect(b.bound).toBe(external - 1);
    expect(b.derived).toEqual(inv(mistral));
    expect(b.unused).toBe(3);
    const files = readCheckpoint(d);
    for (const [name, c] of mistral.constants) {
      const bound = b.graph.constants.get(name)!;
      if (name.endsWith('inv_freq')) {
        expect(bound.source.kind).toBe('inline');
        continue;
      }
      const t = files.get(`language_model.model.${name.slice(2)}`)!;
      expect(bound.source, name).toEqual({ kind: 'external', path: t.file, offset: t.offset, length: t.length });
      expect([bound.dtype, bound.shape]).toEqual([c.dtype, c.shape]);
    }
  });

  it('Qwen-Image\'s transformer (diffusers names, no prefix): QwenEmbedRope\'s tables from axes_dims_rope', () => {
    const d = folder('qwen-image');
    sparseCheckpoint(d, qwen, '', { skip: (n) => n.includes('pos_embed.'), config: { axes_dims_rope: [16, 56, 56] } });
    const b = bindCheckpoint(qwen, d);
    expect([b.namePrefix, b.keyPrefix, b.unused]).toEqual(['m.', '', 0]);
    expect([...b.derived].sort()).toEqual(inv(qwen).sort());
    const table = b.graph.constants.get('m.pos_embed.pos_freqs')!;
    expect(table.source.kind === 'inline' && table.source.tensor.shape).toEqual([4096, 64]);
  });

  it('a missing tensor, another dtype or shape: refused naming the tensor, the file and what the export declares', () => {
    const d = folder('mistral3-missing');
    sparseCheckpoint(d, mistral, 'model.', { skip: (n) => n.endsWith('inv_freq') || n === 'm.layers.7.mlp.down_proj.weight', config: { rope_theta: 1e9 } });
    expect(() => bindCheckpoint(mistral, d)).toThrow(/a tensor for every weight of .*mistral.*prefix 'm\.' -> key prefix 'model\.'.*1 of \d+ missing: 'model\.layers\.7\.mlp\.down_proj\.weight'/);
    const e = folder('mistral3-dtype');
    writeSafetensors(join(e, 'model.safetensors'), [
      ...graphEntries(mistral, (n) => n.slice(2), false).filter((x) => x.key !== 'layers.3.input_layernorm.weight' && x.key !== 'layers.4.input_layernorm.weight'),
      { key: 'layers.3.input_layernorm.weight', dtype: 'float32', shape: [5120] },
      { key: 'layers.4.input_layernorm.weight', dtype: 'bfloat16', shape: [5121] },
    ]);
    const err = (() => { try { bindCheckpoint(mistral, e); } catch (x) { return x as Error; } })();
    expect(err).toBeInstanceOf(CompileError);
    expect(err!.message).toMatch(/checkpoint tensor 'layers\.3\.input_layernorm\.weight' \(.*model\.safetensors\) for initializer 'm\.layers\.3\.input_layernorm\.weight': expected bfloat16 \[5120\].*found float32 \[5120\]/);
  });
});

describe('a tiny model compiled from a checkpoint of its own weights', () => {
  it('sharded, under a prefix: the same weights.bin as from its ONNX data, and --verify against PyTorch passes', async () => {
    const model = join(tinyDir('flux2'), 'model.onnx');
    const graph = importOnnx(model).graph;
    const d = folder('tiny-flux2');
    const entries = graphEntries(graph, (n) => `transformer.${n}`, true);
    writeSafetensors(join(d, 'a.safetensors'), entries.slice(0, 20));
    writeSafetensors(join(d, 'b.safetensors'), entries.slice(20));
    const fromOnnx = await compileModel({ model, out: join(tmp, 'art-onnx'), build: false });
    const fromCheckpoint = await compileModel({ model, out: join(tmp, 'art-ckpt'), build: false, weights: d, verify: tinyDir('flux2') });
    expect(fromCheckpoint.checkpoint).toMatchObject({ namePrefix: '', keyPrefix: 'transformer.', bound: entries.length, derived: [], unused: 0 });
    expect(fromCheckpoint.verify!.passed).toBe(true);
    const bin = (a: string) => readFileSync(join(tmp, a, 'weights.bin'));
    expect(Buffer.compare(bin('art-ckpt'), bin('art-onnx'))).toBe(0);
    expect(fromCheckpoint.weights).toEqual(fromOnnx.weights);
    const manifest = JSON.parse(readFileSync(join(tmp, 'art-ckpt', 'manifest.json'), 'utf8'));
    expect(manifest.source.weights).toMatchObject({ checkpoint: d, keyPrefix: 'transformer.' });
    // The bytes bound are the checkpoint's own: one tensor read through the bound graph.
    const name = [...graph.constants.keys()].find((n) => graph.constants.get(n)!.source.kind === 'external')!;
    const bound = bindCheckpoint(graph, d).graph.constants.get(name)!;
    expect(bound.source.kind === 'external' && bound.source.path).toMatch(/a\.safetensors$/);
    expect(Buffer.compare(readConstantBytes(bound, name), readConstantBytes(graph.constants.get(name)!, name))).toBe(0);
  });
});

describe('a pipeline from a diffusers model folder (npx compile PIPELINE --weights DIR)', () => {
  const model = (name: string) => join(tinyDir(name), 'model.onnx');
  const GRAPHS = {
    flux2: [['transformer', 'flux2'], ['text_encoder', 'mistral_text_encoder'], ['vae', 'flux2_vae_decoder']],
    qwen_image: [['transformer', 'qwen_image'], ['text_encoder', 'qwen_text_encoder'], ['vae', 'qwen_image_vae_decoder']],
  } as const;
  const layout = (name: string, opts: { tokenizer?: boolean; bn?: boolean; family?: keyof typeof GRAPHS } = {}) => {
    const root = folder(name);
    for (const [sub, graph] of GRAPHS[opts.family ?? 'flux2']) {
      const entries = graphEntries(importOnnx(model(graph)).graph, (n) => n, true);
      const stats = sub === 'vae' && opts.bn !== false ? ['bn.running_mean', 'bn.running_var'].map((key, i) => ({
        key, dtype: 'float32' as const, shape: [128], bytes: new Uint8Array(Float32Array.from({ length: 128 }, (_, c) => (i ? 1 + c / 64 : c / 128 - 0.5)).buffer),
      })) : [];
      writeSafetensors(join(folder(`${name}/${sub}`), 'diffusion_pytorch_model.safetensors'), [...entries, ...stats]);
    }
    writeFileSync(join(root, 'vae', 'config.json'), JSON.stringify({ batch_norm_eps: 0.001 }));
    if (opts.tokenizer !== false) writeFileSync(join(folder(`${name}/tokenizer`), 'tokenizer.json'), readFileSync(join(tinyDir('tokenizer'), 'tokenizer.json')));
    return root;
  };
  const pipeline = join(tinyDir('flux2'), '..', '..', 'flux2', 'tiny.pipeline.json');

  it('each network from its subfolder, the model\'s tokenizer, and the VAE\'s batch-norm statistics for latent normalisation', async () => {
    const root = layout('flux2-dev-like');
    const out = join(tmp, 'pipe-ckpt');
    const s = await compilePipeline({ pipeline, out, build: false, weights: root });
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(m.weights).toEqual({ checkpoint: root });
    expect(m.vae.bnMean).toEqual(Array.from({ length: 128 }, (_, c) => Math.fround(c / 128 - 0.5)));
    expect(m.vae.bnVar).toEqual(Array.from({ length: 128 }, (_, c) => Math.fround(1 + c / 64)));
    expect(m.vae.bnEps).toBe(0.001);
    expect(m.files['tokenizer/tokenizer.json']).toBe(sha256File(join(root, 'tokenizer', 'tokenizer.json')));
    // The export's own data is not what the modules hold: the onnx/ copies go without it.
    expect(s.structureOnly.sort()).toEqual(['textEncoder', 'transformer', 'vaeDecoder']);
    for (const [dir, sub] of [['transformer', 'transformer'], ['text_encoder', 'text_encoder'], ['vae_decoder', 'vae']]) {
      const module = JSON.parse(readFileSync(join(out, dir, 'manifest.json'), 'utf8'));
      expect(module.source.weights.checkpoint, dir).toBe(join(root, sub));
      expect(existsSync(join(out, dir, 'weights.bin')), dir).toBe(true);
    }
  });

  it('Qwen-Image: the batch-2 and shorter-text transformers over the same checkpoint share its weights, none written twice', async () => {
    const root = layout('qwen-image-like', { family: 'qwen_image', bn: false });
    const out = join(tmp, 'pipe-qwen-ckpt');
    const s = await compilePipeline({ pipeline: join(tinyDir('qwen_image'), '..', '..', 'qwen_image', 'tiny.pipeline.json'), out, build: false, weights: root });
    expect(s.cfgModule).toBeDefined();
    expect(s.textModules?.map((t) => t.length)).toEqual([16]);
    const entries = (dir: string) => JSON.parse(readFileSync(join(out, dir, 'manifest.json'), 'utf8')).weights.tensors as { learned: boolean; shared?: true }[];
    const own = entries('transformer').filter((t) => t.learned);
    expect(own.length).toBeGreaterThan(20);
    for (const dir of ['transformer_cfg', 'transformer_t16', 'transformer_t16_cfg']) {
      const learned = entries(dir).filter((t) => t.learned);
      expect(learned.filter((t) => t.shared).length, dir).toBeGreaterThanOrEqual(own.length - 2);
      expect(JSON.parse(readFileSync(join(out, dir, 'manifest.json'), 'utf8')).source.weights.checkpoint, dir).toBe(join(root, 'transformer'));
    }
  });

  it('a folder without the tokenizer or the VAE statistics is refused naming what is missing; nothing is written', async () => {
    const out = join(tmp, 'pipe-refused');
    await expect(compilePipeline({ pipeline, out, build: false, weights: layout('no-tokenizer', { tokenizer: false }) })).rejects.toThrow(/--weights .*no-tokenizer.*tokenizer\/tokenizer\.json.*fast tokenizer/);
    await expect(compilePipeline({ pipeline, out, build: false, weights: layout('no-bn', { bn: false }) })).rejects.toThrow(/vae\/.*'bn\.running_mean'.*none/);
    await expect(compilePipeline({ pipeline, out, build: false, weights: folder('not-diffusers') })).rejects.toThrow(/holding text_encoder.*none/);
    expect(existsSync(out)).toBe(false);
  });
});
