/**
 * The bundled full-size exports (compiler/full-models.ts, models/full/<name>.onnx.br): the folder
 * holds exactly the exports FULL_MODELS names; each decompresses to an ONNX graph that parses with
 * the inputs and node count the exporter documented (../shared/models/README.md "full/") and every
 * initializer an external reference to a file that is not there (structure only); where the
 * original export is on this machine (../shared/models/full, absent in CI and in a user's clone)
 * the decompressed file is byte-identical to it. An unknown name is refused, naming it and the
 * bundled ones. The full pipeline descriptions (models/<family>/full.pipeline.json) name them as bundled:NAME.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FULL_MODELS, fullModelPath, fullModelsDir } from '../compiler/full-models.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { ROOT } from '../compiler/paths.ts';
import { loadManifest } from '../runtime/pipeline/manifest.ts';

const NAMES = Object.keys(FULL_MODELS);

// From ../shared/models/README.md (the exporter's description): graph inputs with their shapes,
// and node counts where it gives them.
const DOCUMENTED: Record<string, { inputs: Record<string, (number | string)[]>; nodes?: number }> = {
  flux2_dev: {
    inputs: { hidden_states: [1, 'img_tokens', 128], encoder_hidden_states: [1, 'txt_tokens', 15360], timestep: [1], img_ids: [1, 'img_tokens', 4], txt_ids: [1, 'txt_tokens', 4], guidance: [1] },
    nodes: 13982,
  },
  qwen_image: { inputs: { hidden_states: [1, 4096, 64], encoder_hidden_states: [1, 256, 3584], encoder_hidden_states_mask: [1, 256], timestep: [1] }, nodes: 31907 },
  flux2_vae_decoder: { inputs: { latents: [1, 32, 128, 128] } },
  qwen_image_vae_decoder: { inputs: { latents: [1, 16, 1, 128, 128] } },
  mistral_small_3_1_text_encoder: { inputs: { input_ids: [1, 512], attention_mask: [1, 512] }, nodes: 5596 },
  qwen2_5_vl_7b_text_encoder: { inputs: { input_ids: [1, 290], attention_mask: [1, 290] }, nodes: 5304 },
};

// The exports the bundle was made from; only on the project's own machines.
const original = (name: string) => join(ROOT, '..', 'shared', 'models', 'full', name, 'model.onnx');

describe('bundled full-size exports', () => {
  it('models/full holds one brotli file per export FULL_MODELS names, and its README, nothing else', () => {
    expect(readdirSync(join(ROOT, 'models', 'full')).sort()).toEqual([...NAMES.map((n) => `${n}.onnx.br`), 'README.md'].sort());
    expect(Object.keys(DOCUMENTED).sort()).toEqual([...NAMES].sort());
  });

  it.each(NAMES)('%s: decompresses to a structure-only ONNX graph with its documented inputs', (name) => {
    const file = fullModelPath(name);
    expect(file).toBe(join(fullModelsDir(), name, 'model.onnx'));
    const { graph } = importOnnx(file);
    const shapes = Object.fromEntries(graph.inputs.map((i) => [i, (graph.types.get(i) as { shape: readonly (number | string)[] }).shape]));
    expect(shapes).toEqual(DOCUMENTED[name].inputs);
    if (DOCUMENTED[name].nodes) expect(graph.nodes.length).toBe(DOCUMENTED[name].nodes);
    expect(graph.constants.size).toBeGreaterThan(100);
    for (const [value, c] of graph.constants) {
      expect(c.source.kind, value).toBe('external');
      if (c.source.kind === 'external') expect(existsSync(c.source.path), c.source.path).toBe(false);
    }
  });

  for (const name of NAMES) {
    // The only skip: the originals live in ../shared, which CI and a user's clone do not have.
    it.skipIf(!existsSync(original(name)))(`${name}: byte-identical to ../shared/models/full/${name}/model.onnx (skipped where ../shared is absent: CI, a user's clone)`, () => {
      const bundled = readFileSync(fullModelPath(name)), source = readFileSync(original(name));
      expect([bundled.length, bundled.equals(source)]).toEqual([source.length, true]);
    });
  }

  it('an unknown name is refused, naming it and the bundled exports', () => {
    expect(() => fullModelPath('flux2_devv')).toThrow("no bundled full-size export 'flux2_devv' (bundled: flux2_dev, qwen_image, flux2_vae_decoder, qwen_image_vae_decoder, mistral_small_3_1_text_encoder, qwen2_5_vl_7b_text_encoder)");
    expect(() => fullModelPath('toString')).toThrow(/no bundled full-size export 'toString'/);
  });

  it('the full pipeline descriptions name their graphs as bundled:NAME, resolved to the decompressed exports; an unknown name is an error naming the key', () => {
    for (const [family, names] of [['flux2', ['mistral_small_3_1_text_encoder', 'flux2_dev', 'flux2_vae_decoder']], ['qwen_image', ['qwen2_5_vl_7b_text_encoder', 'qwen_image', 'qwen_image_vae_decoder']]] as const) {
      const m = loadManifest(join(ROOT, 'models', family, 'full.pipeline.json'));
      expect([m.graphs.textEncoder, m.graphs.transformer, m.graphs.vaeDecoder]).toEqual(names.map((n) => fullModelPath(n)));
      for (const g of Object.values(m.graphs)) expect(existsSync(g)).toBe(true);
    }
    const dir = mkdtempSync(join(tmpdir(), 'bundled-'));
    const file = join(dir, 'pipeline.json');
    const raw = JSON.parse(readFileSync(join(ROOT, 'models', 'flux2', 'full.pipeline.json'), 'utf8'));
    raw.tokenizer = join(ROOT, 'models', 'tiny', 'tokenizer', 'tokenizer.json');
    writeFileSync(file, JSON.stringify({ ...raw, graphs: { ...raw.graphs, transformer: 'bundled:flux2' } }));
    expect(() => loadManifest(file)).toThrow(/'graphs\.transformer' should be bundled:NAME with NAME one of flux2_dev, .*found "bundled:flux2"/);
  });
});
