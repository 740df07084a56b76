/**
 * The full-size exports in ../shared/models/full (structure only) and the shape bindings each is
 * compiled with (flux2_dev at 1024x1024: 4096 image tokens, text padded to 512). Shared by the
 * ingest benchmark and the full-graph tests.
 */
import { join } from 'node:path';
import { ROOT } from '../compiler/paths.ts';

export const FULL_DIR = join(ROOT, '..', 'shared', 'models', 'full');

export const FULL_GRAPHS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  flux2_dev: { img_tokens: 4096, txt_tokens: 512 },
  qwen_image: {},
  flux2_vae_decoder: {},
  qwen_image_vae_decoder: {},
  mistral_small_3_1_text_encoder: {},
  qwen2_5_vl_7b_text_encoder: {},
};
