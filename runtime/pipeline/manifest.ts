/**
 * Pipeline manifest: one JSON file that says which graphs, tokenizer and settings make a text-to-
 * image pipeline. `models/<family>/tiny.pipeline.json` describes the bundled tiny models; a pipeline
 * ARTIFACT (compiler/pipeline-artifact.ts) holds the same format as its `manifest.json`, with
 * `modules` (the compiled module folders the GPU executor loads), `compiled` (target, precision)
 * and `files` (sha256 of every copied file: the tokenizer's checked here on load, the ONNX graphs and
 * their data by whoever reads them, GraphRef.verify — the CPU executor; the GPU executor never opens
 * them, and at full size with weights they are the bulk of the artifact). Paths are relative to the
 * manifest's folder; a graph may instead be `bundled:NAME`, one of the full-size structure-only exports
 * bundled in models/full (compiler/full-models.ts). The format is documented in runtime/pipeline/README.md.
 *
 * This module only parses and checks the file (every error names the manifest and the key); the
 * family loaders check it against the graphs' actual inputs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../paths.ts';
import { type Size, formatSize } from './types.ts';
import { sha256File } from '../../compiler/hash.ts';
import { bundledSpecPath } from '../../compiler/full-models.ts';

export const MANIFEST_FORMAT = 'pipeline/1';
/** The bundled tiny Flux.2 pipeline description (what `npx compile` builds with no argument). */
export const BUNDLED_PIPELINE = join(ROOT, 'models', 'flux2', 'tiny.pipeline.json');
/** Where `npx compile` puts a pipeline artifact by default (relative to the working directory). */
export const defaultArtifact = (name: string, target: string, precision: string) => join('artifacts', `${name}-${target}-${precision}`);
/** The artifact `npx compile` with no argument writes, and `npx serve` with no argument serves. */
export const DEFAULT_ARTIFACT = defaultArtifact('flux2-tiny', 'h100', 'fp8');
export const FAMILIES = ['flux2', 'qwen_image'] as const;
export type Family = (typeof FAMILIES)[number];

export const ROLES = ['textEncoder', 'transformer', 'vaeDecoder'] as const;
export type Role = (typeof ROLES)[number];

/** One network of a pipeline, as an executor loads it: the ONNX graph (CPU) and, in an artifact, the compiled module (GPU). */
/** A graph to load; `concurrentRuns`: how many runs its pipeline issues at once (Qwen-Image's true CFG: 2), so an executor may prepare that many (Executor.runMany). */
/** `batched`: the same network compiled at batch 2 (a pipeline artifact's `cfgModule`), which the GPU executor runs pairs of input sets on. */
/** `variants`: the same network compiled for other input shapes (a pipeline artifact's `textModules`), each with its batch-2 module where there is one. */
/** `onnxVariants`: the same graph re-specialised to other input shapes (a pipeline artifact's further sizes), which the CPU executor runs. */
/**
 * `size` (and a variant's): the image size "WxH" a module or graph was compiled for, where the network has one per size: a
 * landscape size and its portrait take the same input shapes, so executors pick by size first (Executor.forSize).
 */
export interface GraphRef {
  role: Role; onnx: string; compiled?: string; concurrentRuns?: number; batched?: string; variants?: ModuleVariant[]; onnxVariants?: OnnxVariant[]; size?: string;
  /** Checks the artifact's hashes of this graph's ONNX files (its folder: the graphs at every size and their data); an executor that reads `onnx` calls it first. */
  verify?: () => void;
}
export interface ModuleVariant { compiled: string; batched?: string; size?: string }
export interface OnnxVariant { onnx: string; size?: string }
/**
 * A pipeline artifact's modules for one further size (after `sizes[0]`, which `modules` serve): the transformer
 * with its batch-2 and text modules, and the VAE decoder, over the first modules' weights; `graphs`: the ONNX
 * graphs at that size for the CPU executor. Folders and files absolute after loading.
 */
export interface SizeModules { size: Size; transformer: string; cfgModule?: string; textModules?: TextModule[]; vaeDecoder: string; graphs: { transformer: string; vaeDecoder: string } }
/** The transformer compiled for a shorter text (`npx compile --text-length`), over the transformer's weights; folders absolute after loading; `cfgModule` exactly where the artifact has one. */
export interface TextModule { length: number; module: string; cfgModule?: string }

export interface PipelineManifest {
  format: typeof MANIFEST_FORMAT;
  family: Family;
  name: string;
  /** Absolute paths after loading. */
  tokenizer: string;
  graphs: Record<Role, string>;
  /** Compiled module folders (absolute), present in a compiled pipeline artifact. */
  modules?: Record<Role, string>;
  /**
   * Source manifests: `"batchedCfg": true` compiles the transformer a second time at batch 2
   * (`npx compile --batch 2`), which runs true CFG's two passes as one (Qwen-Image). Artifacts: that
   * module's folder (absolute after loading), `cfgModule`; it shares the transformer's device weights.
   */
  batchedCfg?: boolean;
  cfgModule?: string;
  /**
   * Source manifests: `"textLengths": [32, 64, ...]` compiles the transformer (and its batch-2 module)
   * again for each of these text lengths, over the same weights, so a prompt runs the shortest one
   * that holds it, as diffusers runs the prompt's own length (Qwen-Image's export pads to 256).
   * Artifacts: those modules, `textModules`.
   */
  textLengths?: number[];
  textModules?: TextModule[];
  /** Artifacts compiled for several sizes: the modules of each size after the first (SizeModules). */
  sizeModules?: SizeModules[];
  /** What the artifact was compiled for. */
  compiled?: { target: string; arch: string; precision: string };
  sizes: Size[];
  /** Image pixels per VAE latent pixel (8 for the real VAEs, 2 for the tiny ones). */
  vaeScaleFactor: number;
  defaults: { steps: number; guidanceScale: number };
  /** Family-specific prompt settings (see the family's prompt.ts). */
  prompt: Record<string, unknown>;
  /** Family-specific VAE settings (see the family's pipeline.ts). */
  vae: Record<string, unknown>;
  /** Plain-text notes on what differs from the real pipeline (tiny models only). */
  adaptations: string[];
  /**
   * Symbolic dims to bind per network when compiling (`npx compile --shape`), e.g. Flux.2 [dev]'s
   * transformer: { img_tokens: 4096, txt_tokens: 512 }. Only graphs with symbolic dims need them.
   */
  shapes: Partial<Record<Role, Record<string, number>>>;
  /** Where the manifest was read from. */
  path: string;
  /** An artifact's ONNX files (absolute path -> sha256 from `files`), checked when read (GraphRef.verify), once. */
  onnxHashes?: Map<string, string>;
}

export class ManifestError extends Error {}

export function graphRef(m: PipelineManifest, role: Role): GraphRef {
  const transformer = role === 'transformer';
  // Sizes tag the modules only where a network has modules of more than one size (the text encoder has none).
  const sized = role !== 'textEncoder' ? m.sizeModules ?? [] : [];
  const tag = (size: Size) => (sized.length ? { size: formatSize(size) } : {});
  const texts = (list: TextModule[] | undefined, size: Size): ModuleVariant[] => (list ?? []).map((t) => ({ compiled: t.module, ...(t.cfgModule ? { batched: t.cfgModule } : {}), ...tag(size) }));
  const variants: ModuleVariant[] = !m.modules ? [] : transformer
    ? [...texts(m.textModules, m.sizes[0]), ...sized.flatMap((x) => [{ compiled: x.transformer, ...(x.cfgModule ? { batched: x.cfgModule } : {}), ...tag(x.size) }, ...texts(x.textModules, x.size)])]
    : sized.map((x) => ({ compiled: x.vaeDecoder, ...tag(x.size) }));
  // The CPU executor's graphs at the further sizes, where they are other files (not a symbolic-size graph's own).
  const onnxVariants = sized.map((x) => ({ onnx: x.graphs[role as 'transformer' | 'vaeDecoder'], size: formatSize(x.size) })).filter((g) => g.onnx !== m.graphs[role]);
  return {
    role, onnx: m.graphs[role], ...(m.modules ? { compiled: m.modules[role] } : {}), ...(transformer && m.cfgModule ? { batched: m.cfgModule } : {}),
    ...(variants.length ? { variants } : {}), ...(onnxVariants.length ? { onnxVariants } : {}), ...tag(m.sizes[0]),
    ...(m.onnxHashes ? { verify: () => verifyOnnx(m, dirname(m.graphs[role])) } : {}),
  };
}

/** The artifact's ONNX files in `folder` against their sha256 in `files` (each file once: a checked one leaves onnxHashes). */
function verifyOnnx(m: PipelineManifest, folder: string): void {
  for (const [p, hash] of m.onnxHashes!) {
    if (dirname(p) !== folder) continue;
    if (sha256File(p) !== hash) throw new ManifestError(`${m.path}: '${relative(dirname(m.path), p)}' does not match its sha256 in the manifest (the artifact is damaged; compile it again)`);
    m.onnxHashes!.delete(p);
  }
}

/** Reads `path`: a manifest file, or a folder holding one (a pipeline artifact's manifest.json, else pipeline.json). */
export function loadManifest(path: string): PipelineManifest {
  let file = resolve(path);
  if (existsSync(file) && statSync(file).isDirectory()) {
    file = existsSync(join(file, 'manifest.json')) ? join(file, 'manifest.json') : join(file, 'pipeline.json');
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ManifestError(`${file}: expected a pipeline manifest (JSON), found ${(e as Error).message}`);
  }
  const bad = (key: string, expected: string, found: unknown): never => {
    throw new ManifestError(`${file}: '${key}' should be ${expected}, found ${JSON.stringify(found)}`);
  };
  const obj = (v: unknown, key: string) => (v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : bad(key, 'an object', v));
  const str = (v: unknown, key: string) => (typeof v === 'string' && v ? v : bad(key, 'a non-empty string', v));
  const num = (v: unknown, key: string, min: number) => (typeof v === 'number' && Number.isFinite(v) && v >= min ? v : bad(key, `a number >= ${min}`, v));
  const dir = dirname(file);
  const file_ = (v: unknown, key: string) => {
    const p = resolve(dir, str(v, key));
    if (!existsSync(p)) bad(key, 'a path to an existing file (relative to the manifest)', v);
    return p;
  };
  const graph_ = (v: unknown, key: string) => bundledSpecPath(str(v, key), (expected) => bad(key, expected, v)) ?? file_(v, key);

  if (typeof raw.format === 'number' && typeof raw.model === 'string') {
    throw new ManifestError(`${file}: expected a pipeline artifact or manifest, found the compiled module '${raw.model}' (one graph); build the whole pipeline with \`npx compile\` (no argument: the bundled tiny Flux.2) or \`npx compile models/<family>/tiny.pipeline.json\``);
  }
  if (raw.format !== MANIFEST_FORMAT) bad('format', `"${MANIFEST_FORMAT}"`, raw.format);
  // Every copied file must be there; the tokenizer's hashes are checked now, the ONNX files' when they are read (GraphRef.verify).
  const onnxHashes = new Map<string, string>();
  if (raw.files !== undefined) {
    for (const [rel, hash] of Object.entries(obj(raw.files, 'files'))) {
      const p = resolve(dirname(file), rel);
      if (!existsSync(p)) bad(`files.${rel}`, 'an existing file (the artifact is incomplete)', rel);
      if (typeof hash !== 'string') bad(`files.${rel}`, 'a sha256 (hex)', hash);
      if (rel.startsWith('onnx/')) onnxHashes.set(p, hash as string);
      else if (sha256File(p) !== hash) {
        throw new ManifestError(`${file}: '${rel}' does not match its sha256 in the manifest (the artifact is damaged; compile it again)`);
      }
    }
  }
  const family = raw.family as Family;
  if (!FAMILIES.includes(family)) bad('family', `one of ${FAMILIES.join(', ')}`, raw.family);
  const graphs = obj(raw.graphs, 'graphs');
  const sizes = Array.isArray(raw.sizes) && raw.sizes.length ? raw.sizes.map((s, i) => parseSize(s) ?? bad(`sizes[${i}]`, 'a "WxH" string', s)) : bad('sizes', 'a non-empty list of "WxH"', raw.sizes);
  const vaeScaleFactor = num(raw.vaeScaleFactor, 'vaeScaleFactor', 1);
  for (const [i, s] of sizes.entries()) {
    const unit = 2 * vaeScaleFactor;
    if (s.width % unit || s.height % unit) bad(`sizes[${i}]`, `multiples of ${unit} (2 x vaeScaleFactor)`, raw.sizes);
  }
  const defaults = obj(raw.defaults, 'defaults');
  const moduleDirs = (mods: Record<string, unknown>) => Object.fromEntries(ROLES.map((role) => {
    const d = resolve(dir, str(mods[role], `modules.${role}`));
    if (!existsSync(join(d, 'manifest.json'))) bad(`modules.${role}`, 'a compiled module folder holding manifest.json', mods[role]);
    return [role, d];
  })) as Record<Role, string>;
  const moduleDir = (rel: string, key: string) => {
    const d = resolve(dir, rel);
    if (!existsSync(join(d, 'manifest.json'))) bad(key, 'a compiled module folder holding manifest.json', rel);
    return d;
  };
  const lengths = (v: unknown) => (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 1) && new Set(v).size === v.length ? v as number[] : bad('textLengths', 'a list of distinct positive integers (text tokens)', v));
  const textModules = (v: unknown, at = 'textModules') => (Array.isArray(v) ? v : bad(at, 'a list', v)).map((t, i) => {
    const key = `${at}[${i}]`;
    const o = obj(t, key);
    // A CFG pair runs batched at every text length or at none (runtime/executor/gpu.ts: a variant without one takes no pair).
    if ((o.cfgModule === undefined) !== (raw.cfgModule === undefined)) {
      bad(`${key}.cfgModule`, raw.cfgModule === undefined ? 'absent, as the artifact has no cfgModule' : 'a batch-2 module, as the artifact\'s cfgModule is one', o.cfgModule ?? null);
    }
    return {
      length: Number.isInteger(o.length) && (o.length as number) >= 1 ? o.length as number : bad(`${key}.length`, 'a positive integer', o.length),
      module: moduleDir(str(o.module, `${key}.module`), `${key}.module`),
      ...(o.cfgModule === undefined ? {} : { cfgModule: moduleDir(str(o.cfgModule, `${key}.cfgModule`), `${key}.cfgModule`) }),
    };
  });
  const sizeModules = (v: unknown) => (Array.isArray(v) ? v : bad('sizeModules', 'a list', v)).map((x, i) => {
    const o = obj(x, `sizeModules[${i}]`), key = (k: string) => `sizeModules[${i}].${k}`;
    const size = parseSize(o.size) ?? bad(key('size'), 'a "WxH" string', o.size);
    if (formatSize(size) !== formatSize(sizes[i + 1] ?? { width: 0, height: 0 })) bad(key('size'), `sizes[${i + 1}] (the sizes after the first, in order)`, o.size);
    const g = obj(o.graphs, key('graphs'));
    return {
      size, transformer: moduleDir(str(o.transformer, key('transformer')), key('transformer')),
      ...(o.cfgModule === undefined ? {} : { cfgModule: moduleDir(str(o.cfgModule, key('cfgModule')), key('cfgModule')) }),
      ...(o.textModules === undefined ? {} : { textModules: textModules(o.textModules, key('textModules')) }),
      vaeDecoder: moduleDir(str(o.vaeDecoder, key('vaeDecoder')), key('vaeDecoder')),
      graphs: { transformer: file_(g.transformer, key('graphs.transformer')), vaeDecoder: file_(g.vaeDecoder, key('graphs.vaeDecoder')) },
    };
  });
  if (raw.modules !== undefined && (Array.isArray(raw.sizeModules) ? raw.sizeModules.length : 0) !== sizes.length - 1) {
    bad('sizeModules', `the compiled modules of each size after the first (${sizes.length - 1})`, raw.sizeModules ?? null);
  }
  const compiledFacts = (c: Record<string, unknown>) => ({ target: str(c.target, 'compiled.target'), arch: str(c.arch, 'compiled.arch'), precision: str(c.precision, 'compiled.precision') });
  return {
    format: MANIFEST_FORMAT, family, name: str(raw.name, 'name'), path: file,
    tokenizer: file_(raw.tokenizer, 'tokenizer'),
    graphs: {
      textEncoder: graph_(graphs.textEncoder, 'graphs.textEncoder'),
      transformer: graph_(graphs.transformer, 'graphs.transformer'),
      vaeDecoder: graph_(graphs.vaeDecoder, 'graphs.vaeDecoder'),
    },
    ...(raw.modules === undefined ? {} : { modules: moduleDirs(obj(raw.modules, 'modules')) }),
    ...(raw.compiled === undefined ? {} : { compiled: compiledFacts(obj(raw.compiled, 'compiled')) }),
    ...(raw.batchedCfg === undefined ? {} : { batchedCfg: typeof raw.batchedCfg === 'boolean' ? raw.batchedCfg : bad('batchedCfg', 'true or false', raw.batchedCfg) }),
    ...(raw.cfgModule === undefined ? {} : { cfgModule: moduleDir(str(raw.cfgModule, 'cfgModule'), 'cfgModule') }),
    ...(raw.textLengths === undefined ? {} : { textLengths: lengths(raw.textLengths) }),
    ...(raw.textModules === undefined ? {} : { textModules: textModules(raw.textModules) }),
    ...(raw.sizeModules === undefined ? {} : { sizeModules: sizeModules(raw.sizeModules) }),
    sizes, vaeScaleFactor,
    defaults: { steps: num(defaults.steps, 'defaults.steps', 1), guidanceScale: num(defaults.guidanceScale, 'defaults.guidanceScale', 0) },
    prompt: raw.prompt === undefined ? {} : obj(raw.prompt, 'prompt'),
    vae: raw.vae === undefined ? {} : obj(raw.vae, 'vae'),
    adaptations: Array.isArray(raw.adaptations) ? raw.adaptations.map(String) : [],
    shapes: raw.shapes === undefined ? {} : shapeBindings(obj(raw.shapes, 'shapes'), bad),
    ...(onnxHashes.size ? { onnxHashes } : {}),
  };
}

/** `shapes`: per role, dim name -> a positive integer. */
function shapeBindings(raw: Record<string, unknown>, bad: (key: string, expected: string, found: unknown) => never): Partial<Record<Role, Record<string, number>>> {
  const out: Partial<Record<Role, Record<string, number>>> = {};
  for (const [role, dims] of Object.entries(raw)) {
    if (!(ROLES as readonly string[]).includes(role)) bad(`shapes.${role}`, `one of ${ROLES.join(', ')}`, role);
    if (!dims || typeof dims !== 'object' || Array.isArray(dims)) bad(`shapes.${role}`, 'an object of dim name -> size', dims);
    out[role as Role] = Object.fromEntries(Object.entries(dims as Record<string, unknown>).map(([k, v]) => {
      if (!Number.isInteger(v) || (v as number) < 1) bad(`shapes.${role}.${k}`, 'a positive integer', v);
      return [k, v as number];
    }));
  }
  return out;
}

/** "1024x1024" -> {width, height}; undefined when malformed or not positive. */
export function parseSize(s: unknown): Size | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^([1-9]\d{0,4})x([1-9]\d{0,4})$/.exec(s);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : undefined;
}
