/**
 * npx bench --e2e: a pipeline artifact whose modules still list launches without a kernel (compiled
 * before their ops got kernels; since adb473f every launch of both full pipelines has one) is
 * refused by name before any module loads; a current one passes the check. Over the tiny Flux.2 pipeline artifact (no nvcc build), its VAE manifest forged.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type E2eRuntime, e2eBench, pendingModules } from '../bench/e2e.ts';
import { compilePipeline } from '../compiler/pipeline-artifact.ts';
import { loadManifest } from '../runtime/pipeline/manifest.ts';
import { ROOT } from '../runtime/paths.ts';

describe('e2e bench: pipeline artifacts with pending launches', () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'e2e-pending-')), 'flux2');
  beforeAll(async () => {
    await compilePipeline({ pipeline: join(ROOT, 'models', 'flux2', 'tiny.pipeline.json'), out: dir, build: false });
  }, 120_000);

  it('a current artifact has no pending module; a forged stale VAE is named, and e2eBench refuses it before loading anything', async () => {
    expect(pendingModules(loadManifest(dir))).toEqual([]);
    const vae = join(loadManifest(dir).modules!.vaeDecoder, 'manifest.json');
    const m = JSON.parse(readFileSync(vae, 'utf8'));
    writeFileSync(vae, JSON.stringify({ ...m, pendingKernels: { 'dc.FusedAttention': 1 } }));
    expect(pendingModules(loadManifest(dir))).toEqual(['vaeDecoder: dc.FusedAttention x1']);
    const loads: string[] = [];
    const runtime: E2eRuntime = { loadModel: (d) => { loads.push(d); throw new Error('must not load'); } };
    await expect(e2eBench({ families: ['flux2'], seed: 1, steps: 1, iters: 1, artifacts: { flux2: dir }, baseline: false }, { runtime }, () => undefined))
      .rejects.toThrow(/flux2: modules with launches that have no kernel \(vaeDecoder: dc.FusedAttention x1\): compiled before their ops got kernels; delete the artifact to compile it again$/);
    expect(loads).toEqual([]);
  }, 60_000);
});
