/**
 * Validation of POST /v1/images/generations bodies, field by field, into a typed request. Every
 * rejection is a 400 (404 for an unknown model) naming the field in `param`, with OpenAI's codes
 * (missing_required_parameter, invalid_type, unknown_parameter, integer_below_min_value, ...).
 * Nothing is silently ignored: a field the pipeline cannot honour (negative_prompt on Flux.2,
 * background "transparent", response_format "url" with no storage) is an error, not a no-op.
 */
import type { OutputFormat } from '../pipeline/image.ts';
import { parseSize } from '../pipeline/manifest.ts';
import { SEED_LIMIT } from '../pipeline/noise.ts';
import { type Pipeline, type Size, formatSize } from '../pipeline/types.ts';
import { ApiError } from './errors.ts';

export interface Limits {
  maxPromptChars: number;
  maxSteps: number;
  maxImages: number;
  maxGuidance: number;
  /** A storage folder is configured: response_format "url" is allowed. */
  urlOutput: boolean;
}

export const DEFAULT_LIMITS: Limits = { maxPromptChars: 4000, maxSteps: 200, maxImages: 10, maxGuidance: 50, urlOutput: false };

export interface ImageRequest {
  prompt: string;
  negativePrompt?: string;
  n: number;
  size: Size;
  responseFormat: 'b64_json' | 'url';
  steps: number;
  /** Undefined: the server draws one. */
  seed?: number;
  guidanceScale: number;
  outputFormat: OutputFormat;
  outputCompression?: number;
  /** 'auto' resolves to 'opaque': the models produce RGB without alpha. */
  background: 'opaque';
}

const FIELDS = ['prompt', 'model', 'n', 'size', 'response_format', 'num_inference_steps', 'seed', 'guidance_scale',
  'negative_prompt', 'output_format', 'output_compression', 'background', 'user'] as const;

const bad = (param: string, message: string, code = 'invalid_value') => new ApiError(400, message, param, code);

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function string(body: Record<string, unknown>, key: string, maxChars: number, required: boolean): string | undefined {
  const v = body[key];
  if (v === undefined) {
    if (required) throw bad(key, `'${key}' is required`, 'missing_required_parameter');
    return undefined;
  }
  if (typeof v !== 'string') throw bad(key, `'${key}' must be a string, got ${typeName(v)}`, 'invalid_type');
  if (required && v.trim() === '') throw bad(key, `'${key}' must not be empty`, 'empty_string');
  if ([...v].length > maxChars) throw bad(key, `'${key}' is longer than ${maxChars} characters`, 'string_above_max_length');
  return v;
}

function integer(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(key, `'${key}' must be an integer, got ${typeof v === 'number' ? v : typeName(v)}`, 'invalid_type');
  if (v < min) throw bad(key, `'${key}' must be at least ${min}, got ${v}`, 'integer_below_min_value');
  if (v > max) throw bad(key, `'${key}' must be at most ${max}, got ${v}`, 'integer_above_max_value');
  return v;
}

function number(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(key, `'${key}' must be a finite number, got ${typeName(v)}`, 'invalid_type');
  if (v < min || v > max) throw bad(key, `'${key}' must be between ${min} and ${max}, got ${v}`, 'number_out_of_range');
  return v;
}

function choice<T extends string>(body: Record<string, unknown>, key: string, allowed: readonly T[]): T | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(key, `'${key}' must be a string, got ${typeName(v)}`, 'invalid_type');
  if (!allowed.includes(v as T)) throw bad(key, `'${key}' must be one of ${allowed.join(', ')}; got '${v}'`, 'unsupported_value');
  return v as T;
}

export function validateImageRequest(body: unknown, pipeline: Pipeline, limits: Limits = DEFAULT_LIMITS): ImageRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, `request body must be a JSON object, got ${typeName(body)}`, null, 'invalid_type');
  }
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    if (!(FIELDS as readonly string[]).includes(key)) throw bad(key, `unknown parameter '${key}'`, 'unknown_parameter');
  }
  const prompt = string(b, 'prompt', limits.maxPromptChars, true)!;
  const model = string(b, 'model', 256, false);
  if (model !== undefined && model !== pipeline.name) {
    throw new ApiError(404, `model '${model}' is not served here; this server serves '${pipeline.name}'`, 'model', 'model_not_found', 'not_found_error');
  }
  string(b, 'user', 256, false);

  const n = integer(b, 'n', 1, limits.maxImages) ?? 1;
  const sizes = pipeline.sizes.map(formatSize);
  let size = pipeline.sizes[0];
  if (b.size !== undefined && b.size !== null && b.size !== 'auto') {
    if (typeof b.size !== 'string') throw bad('size', `'size' must be a string such as '${sizes[0]}', got ${typeName(b.size)}`, 'invalid_type');
    const parsed = parseSize(b.size);
    const found = parsed && pipeline.sizes.find((s) => s.width === parsed.width && s.height === parsed.height);
    if (!found) throw bad('size', `size '${b.size}' is not supported; supported sizes: ${sizes.join(', ')} (or 'auto')`, 'unsupported_value');
    size = found;
  }
  const responseFormat = choice(b, 'response_format', ['b64_json', 'url'] as const) ?? 'b64_json';
  if (responseFormat === 'url' && !limits.urlOutput) {
    throw bad('response_format', "response_format 'url' needs a storage folder (serve --storage DIR); this server has none, use 'b64_json'", 'unsupported_value');
  }
  const steps = integer(b, 'num_inference_steps', 1, limits.maxSteps) ?? pipeline.defaults.steps;
  const seed = integer(b, 'seed', 0, SEED_LIMIT);
  const guidanceScale = number(b, 'guidance_scale', 0, limits.maxGuidance) ?? pipeline.defaults.guidanceScale;

  const negativePrompt = string(b, 'negative_prompt', limits.maxPromptChars, false);
  if (negativePrompt !== undefined) {
    if (!pipeline.supportsNegativePrompt) {
      throw bad('negative_prompt', `negative_prompt is not supported: ${pipeline.name} (${pipeline.family}) is guidance-distilled and has no classifier-free guidance`, 'unsupported_parameter');
    }
    if (guidanceScale <= 1) throw bad('negative_prompt', `negative_prompt needs guidance_scale > 1 (true CFG); got guidance_scale ${guidanceScale}`, 'invalid_value');
  }

  const format = choice(b, 'output_format', ['png', 'webp', 'jpeg', 'jpg'] as const) ?? 'png';
  const outputFormat: OutputFormat = format === 'jpg' ? 'jpeg' : format;
  const outputCompression = integer(b, 'output_compression', 0, 100);
  if (outputCompression !== undefined && outputFormat === 'png') {
    throw bad('output_compression', "output_compression applies to 'jpeg' and 'webp' only, not 'png'", 'unsupported_parameter');
  }
  const background = choice(b, 'background', ['auto', 'opaque', 'transparent'] as const) ?? 'auto';
  if (background === 'transparent') {
    throw bad('background', `background 'transparent' is not supported: ${pipeline.name} produces opaque RGB images (no alpha channel); use 'opaque' or 'auto'`, 'unsupported_value');
  }
  return {
    prompt, n, size, responseFormat, steps, guidanceScale, outputFormat, background: 'opaque',
    ...(seed !== undefined ? { seed } : {}),
    ...(negativePrompt !== undefined ? { negativePrompt } : {}),
    ...(outputCompression !== undefined ? { outputCompression } : {}),
  };
}
