/**
 * Qwen-Image with the transformer compiled for shorter texts (a pipeline's `textLengths`): through
 * the GPU executor's seam over stand-in modules, a request whose prompts fit 16 tokens runs the
 * 16-token modules (both CFG predictions as one batch-2 run), a longer one the export's 24-token
 * ones, with the text rows and mask cut to that length; a prompt alone (no CFG) likewise. Malformed
 * `textLengths` / `textModules` in a manifest are refused, naming the key.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../../compiler/ir/tensor.ts';
import { ROOT } from '../../compiler/paths.ts';
import { compilePipeline } from '../../compiler/pipeline-artifact.ts';
import { type CompiledModule, gpuExecutorFactory } from '../../runtime/executor/gpu.ts';
import { loadPipeline } from '../../runtime/pipeline/load.ts';
import { loadManifest } from '../../runtime/pipeline/manifest.ts';
import { TextTokenizer } from '../../runtime/pipeline/tokenizer.ts';
import { renderTemplate, resolveDropTokens } from '../../models/qwen_image/prompt.ts';

const out = join(mkdtempSync(join(tmpdir(), 'text-lengths-')), 'qwen');
beforeAll(async () => {
  await compilePipeline({ pipeline: join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'), out, build: false });
}, 120_000);

describe('Qwen-Image over text-length variants', () => {
  it('each request runs the shortest compiled text length that holds its prompts', async () => {
    const calls: string[] = [];
    const runtime = {
      loadModel: (dir: string): CompiledModule => {
        const io = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).io as { outputs: { name: string; shape: number[] }[] };
        const name = basename(dir);
        return {
          run: (inputs) => {
            const text = inputs.encoder_hidden_states_mask;
            if (text) calls.push(`${name} text [${inputs.encoder_hidden_states.shape}] mask ${Array.from(text.data as BigInt64Array, Number).join('')}`);
            return Object.fromEntries(io.outputs.map((o) => [o.name, Tensor.zeros('float32', o.shape)]));
          },
          close: () => undefined,
        };
      },
    };
    const pipeline = await loadPipeline(out, gpuExecutorFactory(runtime, { syntheticWeights: 1 }));
    const request = { size: { width: 64, height: 64 }, steps: 1, guidanceScale: 4, seed: 3 };
    try {
      await pipeline.generate({ ...request, prompt: 'a fox', negativePrompt: ' ' });
      await pipeline.generate({ ...request, prompt: 'a red fox at dusk', negativePrompt: ' ' });
      await pipeline.generate({ ...request, prompt: 'a fox', guidanceScale: 1 });
    } finally {
      await pipeline.release();
    }
    // Rows each prompt keeps: its template-wrapped tokens less the dropped prefix, at most the export's 24.
    const m = loadManifest(join(ROOT, 'models', 'qwen_image', 'tiny.pipeline.json'));
    const tok = TextTokenizer.load(m.tokenizer);
    const settings = { template: m.prompt.template as string, dropTokens: 'prefix' as const, maxSequenceLength: 512 };
    const kept = (p: string) => Math.min(24, tok.encode(renderTemplate(p, settings.template), true).length - resolveDropTokens(tok, settings));
    const [fox, blank, long] = ['a fox', ' ', 'a red fox at dusk'].map(kept);
    expect([fox <= 16, blank <= 16, long > 16]).toEqual([true, true, true]);
    const mask = (n: number, length: number) => '1'.repeat(n) + '0'.repeat(length - n);
    expect(calls).toEqual([
      `transformer_t16_cfg text [2,16,192] mask ${mask(fox, 16)}${mask(blank, 16)}`,
      `transformer_cfg text [2,24,192] mask ${mask(long, 24)}${mask(blank, 24)}`,
      `transformer_t16 text [1,16,192] mask ${mask(fox, 16)}`,
    ]);
  });
});

describe('textLengths / textModules in a manifest', () => {
  it('are refused when malformed, naming the key', () => {
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    const bad = (patch: Record<string, unknown>) => {
      const file = join(out, 'bad.json');
      writeFileSync(file, JSON.stringify({ ...manifest, files: undefined, ...patch }));
      return () => loadManifest(file);
    };
    expect(bad({ textLengths: [16, 16] })).toThrow(/'textLengths' should be a list of distinct positive integers \(text tokens\), found \[16,16\]/);
    expect(bad({ textLengths: [0] })).toThrow(/'textLengths' should be a list of distinct positive integers/);
    expect(bad({ textModules: [{ length: 16, module: 'transformer_t99', cfgModule: 'transformer_t16_cfg' }] })).toThrow(/'textModules\[0\]\.module' should be a compiled module folder holding manifest.json, found "transformer_t99"/);
    expect(bad({ textModules: [{ length: 1.5, module: 'transformer_t16', cfgModule: 'transformer_t16_cfg' }] })).toThrow(/'textModules\[0\]\.length' should be a positive integer, found 1.5/);
    expect(bad({ textModules: [{ length: 16, module: 'transformer_t16' }] })).toThrow(/'textModules\[0\]\.cfgModule' should be a batch-2 module, as the artifact's cfgModule is one, found null/);
    expect(bad({ cfgModule: undefined })).toThrow(/'textModules\[0\]\.cfgModule' should be absent, as the artifact has no cfgModule, found "transformer_t16_cfg"/);
    expect(loadManifest(out).textModules).toEqual([{ length: 16, module: join(out, 'transformer_t16'), cfgModule: join(out, 'transformer_t16_cfg') }]);
  });
});
