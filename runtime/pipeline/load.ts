/**
 * The family registry and the one entry point that turns a manifest into a running pipeline:
 * loadPipeline(path, executorFactory). Each family's loader checks the manifest against the
 * graphs it loaded (input names, static lengths, token grids) and fails naming what disagrees.
 */
import { Flux2Pipeline } from '../../models/flux2/pipeline.ts';
import { QwenImagePipeline } from '../../models/qwen_image/pipeline.ts';
import type { ExecutorFactory } from '../executor/types.ts';
import { type Family, type PipelineManifest, loadManifest } from './manifest.ts';
import type { Pipeline } from './types.ts';

export const FAMILY_LOADERS: Record<Family, (m: PipelineManifest, f: ExecutorFactory) => Promise<Pipeline>> = {
  flux2: (m, f) => Flux2Pipeline.load(m, f),
  qwen_image: (m, f) => QwenImagePipeline.load(m, f),
};

export async function loadPipeline(manifest: string | PipelineManifest, factory: ExecutorFactory): Promise<Pipeline> {
  const m = typeof manifest === 'string' ? loadManifest(manifest) : manifest;
  return FAMILY_LOADERS[m.family](m, factory);
}
