/**
 * compilePipeline: a pipeline description (a `pipeline/1` manifest such as models/flux2/tiny.pipeline.json:
 * tokenizer, text encoder, transformer, VAE decoder, sizes, settings) -> one artifact folder the server
 * runs end to end:
 *
 *   manifest.json                 the pipeline manifest (runtime/pipeline/manifest.ts) with paths into this
 *                                 folder, plus `modules`, the compile facts and a sha256 per copied file
 *   tokenizer/tokenizer.json      the model's own tokenizer (and tokenizer_config.json when present)
 *   text_encoder/ transformer/ vae_decoder/
 *                                 one module artifact each, written by compileModel (compile.ts): kernels,
 *                                 launch plan, weights.bin, report.md — what the GPU executor loads
 *   transformer_cfg/              with `batchedCfg`: the transformer at batch 2 (true CFG's two passes in
 *                                 one run); its weights.bin holds only the small constants: the GPU
 *                                 runtime runs it over transformer/'s device weights
 *   transformer_t<N>/ (and _cfg/) with `textLengths`: the transformer (and its batch-2 module) for a text
 *                                 of N tokens (compiler/ir/resequence.ts), over transformer/'s weights too
 *   transformer_<W>x<H>/ (_cfg/, _t<N>/, _t<N>_cfg/) and vae_decoder_<W>x<H>/
 *                                 for each size after the first: the transformer's modules and the VAE
 *                                 decoder at that size, over transformer/'s and vae_decoder/'s weights
 *   onnx/<module>/model.onnx(.data)
 *                                 the source graphs, for the CPU executor (onnxruntime) on machines
 *                                 without a GPU, so the folder is self-contained; model.<W>x<H>.onnx
 *                                 beside them where an export was traced at another size
 *
 * Sizes: the description's `sizes`, or `--size WxH,...` in their place. The first size's transformer
 * and VAE decoder are the modules above; every further size adds its own (`sizeModules` in the
 * manifest), compiled from the same exports: a symbolic img_tokens bound, a static export
 * re-specialised (compiler/ir/resize.ts), and the ONNX graph at that size written for the CPU executor
 * (compiler/onnx/export.ts). A module at another size may hold its own RoPE tables (Qwen-Image's), and
 * nothing else of its own (checkOwnWeights).
 *
 * Weights: with `--weights DIR` (a diffusers model folder as Hugging Face ships it), each network's
 * weights come from DIR's transformer/, text_encoder/ and vae/ safetensors (compileModel's `weights`,
 * compiler/onnx/checkpoint.ts), the tokenizer from DIR/tokenizer/tokenizer.json, and Flux.2's latent
 * statistics from the VAE's bn.running_mean / running_var (checkpointParts). The onnx/ copies then go
 * without the export's own data, so the CPU executor cannot run such an artifact.
 *
 * Modules compile one after another (each one's nvcc build is already parallel) into a staging folder
 * beside the destination; the artifact then replaces the destination atomically (artifact.ts), so a
 * failure in any module leaves the previous artifact untouched.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import onnxProto from 'onnx-proto';
import { BUNDLED_PIPELINE, type Family, ManifestError, type PipelineManifest, type Role, defaultArtifact, loadManifest } from '../runtime/pipeline/manifest.ts';
import { formatSize } from '../runtime/pipeline/types.ts';
import { writeArtifact } from './artifact.ts';
import { type CompileSummary, TARGETS, compileModel, parseSize } from './compile.ts';
import { type Graph, symbolicDims } from './ir/graph.ts';
import { type LatentSize, resize } from './ir/resize.ts';
import { writeRespecialisedOnnx } from './onnx/export.ts';
import { importOnnx } from './onnx/import.ts';
import { fail } from './errors.ts';
import { ROOT } from './paths.ts';
import type { WeightEntry } from './weights-file.ts';
import { sha256File } from './hash.ts';
import { readConfig } from './onnx/checkpoint.ts';
import { readCheckpoint, readStoredTensor } from './onnx/safetensors.ts';

const { onnx } = onnxProto as unknown as { onnx: any };

export const DEFAULT_PIPELINE = BUNDLED_PIPELINE;

/** The artifact's sub-folder for each network. */
export const MODULES: Record<Role, string> = { textEncoder: 'text_encoder', transformer: 'transformer', vaeDecoder: 'vae_decoder' };
/** The transformer compiled at batch 2 (a source manifest's `batchedCfg`): true CFG's two passes in one run. */
export const CFG_MODULE = 'transformer_cfg';

export interface PipelineCompileOptions {
  /** A pipeline manifest (.json) or a folder holding pipeline.json; default: the bundled tiny Flux.2. */
  pipeline?: string;
  target?: string;
  precision?: string;
  policy?: string;
  emulate?: boolean;
  out?: string;
  build?: boolean;
  /** A diffusers model folder (transformer/, text_encoder/, vae/, tokenizer/): the real weights, tokenizer and VAE statistics (header, "Weights"). */
  weights?: string;
  /** Image sizes ("WxH") to serve, in place of the description's `sizes` (header, "Sizes"). */
  sizes?: string[];
}

type ModuleSummary = Pick<CompileSummary, 'model' | 'source' | 'nodes' | 'launches' | 'fusedAttention' | 'memory' | 'flops' | 'build' | 'weights' | 'seconds'> & { artifact: string };

/** The --json object: the contract keys of ../shared/DESIGN.md summed over the modules, and each module's own. */
export interface PipelineSummary {
  artifact: string;
  /** The family (flux2, qwen_image); `name` is the served model id. */
  model: Family;
  name: string;
  target: string;
  precision: string;
  sizes: string[];
  nodes: { input: number; optimized: number };
  launches: number;
  fusedAttention: number;
  /** Summed: the three modules stay loaded together. */
  memory: { arenaBytes: number; maxLiveBytes: number; naiveBytes: number };
  /** One run of each module (the transformer runs once per step and CFG pass). */
  flops: number;
  verify: null;
  build: { kernels: number; cached: number; spills: number; seconds: number } | null;
  modules: Record<Role, ModuleSummary>;
  /** The transformer at batch 2 (a manifest's `batchedCfg`), not counted in the sums above. */
  cfgModule?: SharingModule;
  /** The transformer for shorter texts (a manifest's `textLengths`), not counted in the sums above. */
  textModules?: TextModules;
  /** The transformer (with its batch-2 and text modules) and the VAE decoder for each size after the first, not counted in the sums above. */
  sizeModules?: { size: string; transformer: SharingModule; cfg?: SharingModule; textModules?: TextModules; vaeDecoder: SharingModule }[];
  /**
   * Networks whose onnx/ copy has no weights, so the CPU executor cannot run them: the structure-only
   * full-size exports (the GPU runs them with synthetic weights, `--synthetic-weights SEED`), and every
   * network of a pipeline compiled with `--weights` (its modules hold the checkpoint's weights).
   */
  structureOnly: Role[];
  seconds: number;
}

/** A module compiled to run over another's weights (the transformer's, the VAE decoder's). */
interface SharingModule { artifact: string; launches: number; arenaBytes: number; seconds: number }
type TextModules = (SharingModule & { length: number; cfg?: SharingModule })[];

const textEntries = (list: TextModules) => list.map((t) => ({ length: t.length, module: t.artifact, ...(t.cfg ? { cfgModule: t.cfg.artifact } : {}) }));

const weightEntries = (dir: string) => (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { weights: { tensors: WeightEntry[] } }).weights.tensors;

/**
 * A module over another's weights (`donor`: that module's entries by name: the transformer's, the VAE
 * decoder's) holds no learned weight of its own, except the tables its shapes change: for a shorter
 * text, a shorter cut of one of the donor's (the text RoPE tables); at another size, the donor's table
 * at another shape (the image RoPE tables). Anything else would be a second copy of a weight on the
 * GPU, silently, so it is refused naming the weight.
 */
function checkOwnWeights(donor: ReadonlyMap<string, WeightEntry>, role: Role, dir: string, folder: string, tables: 'shorter' | 'reshaped' | undefined): void {
  const count = (t: WeightEntry) => t.shape.reduce((a, b) => a * b, 1);
  for (const t of weightEntries(dir)) {
    if (!t.learned || t.shared) continue;
    const theirs = donor.get(t.name);
    if (theirs && tables === 'shorter' && count(t) < count(theirs)) continue;
    if (theirs && tables === 'reshaped' && t.shape.join() !== theirs.shape.join()) continue;
    const allowed = tables === 'shorter' ? ', or a shorter cut of one of them' : tables === 'reshaped' ? ', or one of them at another shape' : '';
    fail(`${folder}: weight '${t.name}'`, `the ${role}'s own entry (this module runs over ${MODULES[role]}/'s weights)${allowed}`, theirs ? `an entry that differs from it ([${t.shape}] against [${theirs.shape}])` : `a learned weight the ${role} does not hold`);
  }
}

/** A diffusers model folder's subfolder for each network. */
const CHECKPOINT_FOLDERS: Record<Role, string> = { textEncoder: 'text_encoder', transformer: 'transformer', vaeDecoder: 'vae' };
/** Adaptations of a structure-only description that a checkpoint makes untrue (its weights, tokenizer and VAE statistics are the real ones). */
const CHECKPOINT_REPLACES = ['structure-only graphs', 'tokenizer:', 'vae.bnMean', 'prompt.dropTokens'];

/**
 * What `--weights DIR` (a diffusers model folder, as Hugging Face ships it) gives each part of the
 * pipeline: each network's safetensors folder, the model's own tokenizer.json, and (Flux.2) the VAE's
 * batch-norm statistics for latent normalisation (vae/ bn.running_mean, bn.running_var, and its
 * config's batch_norm_eps), as Flux2Pipeline reads them off the VAE.
 */
function checkpointParts(weights: string, m: PipelineManifest) {
  const root = resolve(weights);
  const sub = (rel: string, what: string) => {
    const p = join(root, rel);
    if (!existsSync(p)) fail(`--weights ${weights}`, `a diffusers model folder holding ${rel} (${what})`, 'none');
    return p;
  };
  const graphs = Object.fromEntries((Object.entries(CHECKPOINT_FOLDERS) as [Role, string][]).map(([role, dir]) => [role, sub(dir, `the ${role}'s safetensors`)])) as Record<Role, string>;
  const tokenizer = sub('tokenizer/tokenizer.json', "the model's fast tokenizer; transformers' tokenizer.save_pretrained() writes it");
  const vae: Record<string, unknown> = {};
  if (m.family === 'flux2') {
    const tensors = readCheckpoint(graphs.vaeDecoder);
    for (const [field, key] of [['bnMean', 'bn.running_mean'], ['bnVar', 'bn.running_var']] as const) {
      const t = tensors.get(key);
      if (!t) fail(`--weights ${weights}: ${CHECKPOINT_FOLDERS.vaeDecoder}/`, `the VAE's '${key}' (latent normalisation statistics)`, 'none');
      vae[field] = Array.from(readStoredTensor(t).toFloat32());
    }
    const eps = readConfig(graphs.vaeDecoder)?.batch_norm_eps;
    if (typeof eps === 'number') vae.bnEps = eps;
  }
  return { root, graphs, tokenizer, vae };
}

/** Is `path` a pipeline description (a .json file, or a folder with pipeline.json) rather than a graph? */
export function isPipelinePath(path: string): boolean {
  const p = resolve(path);
  if (p.endsWith('.json')) return true;
  return existsSync(join(p, 'pipeline.json')) && !existsSync(join(p, 'model.onnx'));
}


/** The external-data files a graph names (the `location` of its initializers), relative to its folder. */
function externalDataFiles(model: string): string[] {
  const proto = onnx.ModelProto.decode(readFileSync(model));
  const names = new Set<string>();
  for (const init of proto.graph.initializer) {
    for (const e of init.externalData ?? []) if (e.key === 'location') names.add(e.value);
  }
  for (const n of names) {
    if (n.split(/[\\/]/).includes('..') || n.startsWith('/')) fail(model, 'external data inside the graph\'s folder', `location '${n}'`);
  }
  return [...names];
}

export async function compilePipeline(options: PipelineCompileOptions): Promise<PipelineSummary> {
  const start = performance.now();
  const source = resolve(options.pipeline ?? DEFAULT_PIPELINE);
  let m: PipelineManifest;
  try {
    m = loadManifest(source);
  } catch (e) {
    if (e instanceof ManifestError) fail(source, 'a pipeline description (format pipeline/1, see runtime/pipeline/README.md)', e.message);
    throw e;
  }
  if (m.textLengths?.length && m.family !== 'qwen_image') fail(`${source}: textLengths`, 'a qwen_image pipeline (Flux.2 pads every prompt to its 512 tokens, as diffusers does)', m.family);
  const target = options.target ?? 'h100';
  if (!(target in TARGETS)) fail('--target', `one of ${Object.keys(TARGETS).join(', ')}`, `'${target}'`);
  const precision = options.precision ?? TARGETS[target as keyof typeof TARGETS].defaultPrecision;
  const artifact = resolve(options.out ?? defaultArtifact(m.name, target, precision));

  const staging = join(dirname(artifact), `.${basename(artifact)}.staging-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const modules = {} as Record<Role, ModuleSummary>;
    let textType: string | undefined; // the transformer's encoder_hidden_states, e.g. "bfloat16[1,256,3584]"
    const checkpoint = options.weights ? checkpointParts(options.weights, m) : undefined;
    const sizes = (options.sizes ?? m.sizes.map(formatSize)).map((t) => parseSize(t, m.vaeScaleFactor, options.sizes ? '--size' : `${source}: sizes`));
    const twice = sizes.find((x, i) => sizes.findIndex((y) => y.text === x.text) !== i);
    if (twice) fail(options.sizes ? '--size' : `${source}: sizes`, 'each size once', twice.text);
    const [primary, ...others] = sizes;
    const sized = (role: Role) => role !== 'textEncoder';
    for (const [role, folder] of Object.entries(MODULES) as [Role, string][]) {
      const s = await compileModel({
        model: m.graphs[role], target, precision, policy: options.policy, emulate: options.emulate, build: options.build,
        shape: m.shapes[role], out: join(staging, folder), weights: checkpoint?.graphs[role],
        ...(sized(role) ? { size: primary.text, vaeScaleFactor: m.vaeScaleFactor } : {}),
      });
      if (role === 'transformer') textType = s.shapes.encoder_hidden_states;
      modules[role] = {
        artifact: folder, model: s.model, source: s.source, nodes: s.nodes, launches: s.launches, fusedAttention: s.fusedAttention,
        memory: s.memory, flops: s.flops, build: s.build, weights: s.weights, seconds: s.seconds,
      };
    }
    // The transformer again at batch 2 (true CFG in one run, compiler/ir/rebatch.ts), for shorter texts
    // (compiler/ir/resequence.ts) and, with the VAE decoder, for each further size (compiler/ir/resize.ts).
    // Their weights are the first modules'; the GPU runtime loads them over those modules' device
    // weights (gpu/model.ts weightsFrom).
    const donors = new Map<Role, WeightEntry[]>();
    const donorOf = (role: Role) => {
      if (!donors.has(role)) donors.set(role, weightEntries(join(staging, MODULES[role])));
      return donors.get(role)!;
    };
    const sharing = async (role: Role, folder: string, how: { batch?: number; textLength?: number; size?: string }): Promise<SharingModule> => {
      const donor = donorOf(role);
      const s = await compileModel({
        model: m.graphs[role], target, precision, policy: options.policy, emulate: options.emulate, build: options.build,
        shape: m.shapes[role], batch: how.batch, textLength: how.textLength, size: how.size ?? primary.text, vaeScaleFactor: m.vaeScaleFactor,
        weightsFrom: donor, out: join(staging, folder), weights: checkpoint?.graphs[role],
      });
      const tables = how.size && how.size !== primary.text ? 'reshaped' : how.textLength !== undefined ? 'shorter' : undefined;
      checkOwnWeights(new Map(donor.map((t) => [t.name, t])), role, join(staging, folder), folder, tables);
      return { artifact: folder, launches: s.launches, arenaBytes: s.memory?.arenaBytes ?? 0, seconds: s.seconds };
    };
    if (m.textLengths?.length) {
      // Shorter texts only: the pipeline pads to the export's length and picks a shorter one where it holds the prompts.
      const full = Number(/\[\d+,(\d+)/.exec(textType ?? '')?.[1]);
      const bad = m.textLengths.find((n) => !(n < full));
      if (bad !== undefined) fail(`${source}: textLengths`, `lengths below the transformer's text length (${full})`, String(bad));
    }
    // One size's transformer modules beside the first: batch 2, and each text length (with its batch 2).
    const transformerModules = async (prefix: string, size?: string) => {
      const cfg = m.batchedCfg ? await sharing('transformer', `${prefix}_cfg`, { batch: 2, size }) : undefined;
      const text: TextModules = [];
      for (const length of m.textLengths ?? []) {
        const folder = `${prefix}_t${length}`;
        text.push({ length, ...(await sharing('transformer', folder, { textLength: length, size })), ...(m.batchedCfg ? { cfg: await sharing('transformer', `${folder}_cfg`, { batch: 2, textLength: length, size }) } : {}) });
      }
      return { cfg, text };
    };
    const { cfg, text: textModules } = await transformerModules(MODULES.transformer);
    const sizeModules: NonNullable<PipelineSummary['sizeModules']> = [];
    for (const size of others) {
      const prefix = `${MODULES.transformer}_${size.text}`;
      const transformer = await sharing('transformer', prefix, { size: size.text });
      const more = await transformerModules(prefix, size.text);
      const vaeDecoder = await sharing('vaeDecoder', `${MODULES.vaeDecoder}_${size.text}`, { size: size.text });
      sizeModules.push({ size: size.text, transformer, ...(more.cfg ? { cfg: more.cfg } : {}), ...(more.text.length ? { textModules: more.text } : {}), vaeDecoder });
    }
    const list = Object.values(modules);
    const sum = (f: (s: ModuleSummary) => number) => list.reduce((a, s) => a + f(s), 0);
    const summary: PipelineSummary = {
      artifact, model: m.family, name: m.name, target, precision, sizes: sizes.map((x) => x.text),
      nodes: { input: sum((s) => s.nodes.input), optimized: sum((s) => s.nodes.optimized) },
      launches: sum((s) => s.launches), fusedAttention: sum((s) => s.fusedAttention),
      ...(cfg ? { cfgModule: cfg } : {}), ...(textModules.length ? { textModules } : {}), ...(sizeModules.length ? { sizeModules } : {}),
      memory: {
        arenaBytes: sum((s) => s.memory?.arenaBytes ?? 0), maxLiveBytes: sum((s) => s.memory?.maxLiveBytes ?? 0),
        naiveBytes: sum((s) => s.memory?.naiveBytes ?? 0),
      },
      flops: sum((s) => s.flops), verify: null,
      build: list.every((s) => s.build) ? {
        kernels: sum((s) => s.build!.kernels), cached: sum((s) => s.build!.cached), spills: sum((s) => s.build!.spills), seconds: sum((s) => s.build!.seconds),
      } : null,
      modules, structureOnly: [], seconds: 0,
    };
    await writeArtifact(artifact, (folder) => {
      const textFolders = (list: TextModules | undefined) => (list ?? []).flatMap((t) => [t, t.cfg]);
      const extra = [cfg, ...textFolders(textModules), ...sizeModules.flatMap((x) => [x.transformer, x.cfg, ...textFolders(x.textModules), x.vaeDecoder])]
        .filter((x) => x).map((x) => x!.artifact);
      for (const dir of [...Object.values(MODULES), ...extra]) renameSync(join(staging, dir), join(folder, dir));
      const files: Record<string, string> = {};
      const copy = (from: string, to: string) => {
        mkdirSync(dirname(join(folder, to)), { recursive: true });
        copyFileSync(from, join(folder, to));
        files[to] = sha256File(from);
        return to;
      };
      const tokenizerFile = checkpoint?.tokenizer ?? m.tokenizer;
      const tokenizer = copy(tokenizerFile, 'tokenizer/tokenizer.json');
      const config = join(dirname(tokenizerFile), 'tokenizer_config.json');
      if (existsSync(config)) copy(config, 'tokenizer/tokenizer_config.json');
      const graphs = {} as Record<Role, string>;
      for (const [role, dir] of Object.entries(MODULES) as [Role, string][]) {
        const src = m.graphs[role];
        for (const f of externalDataFiles(src)) {
          // With a checkpoint, the export's own data (if any) is not what the modules hold: not copied.
          if (!checkpoint && existsSync(join(dirname(src), f))) copy(join(dirname(src), f), `onnx/${dir}/${f}`);
          else if (!summary.structureOnly.includes(role)) summary.structureOnly.push(role);
        }
        graphs[role] = copy(src, `onnx/${dir}/model.onnx`);
      }
      // The transformer and VAE decoder at each size, for the CPU executor: the export re-specialised
      // (compiler/ir/resize.ts) and written beside its copy (its external data), or the copy itself
      // where the export already takes the size (a symbolic img_tokens, or the export's own size).
      const imported = new Map<Role, Graph>(); // each export read once, whatever the sizes
      const copies = { ...graphs }; // the exports as copied (graphs[role] becomes the first size's below)
      const onnxAt = (role: Role, size: LatentSize & { text: string }) => {
        const src = m.graphs[role], dir = MODULES[role];
        let graph = imported.get(role);
        if (!graph) imported.set(role, (graph = importOnnx(src).graph));
        const resized = symbolicDims(graph).includes('img_tokens') ? graph : resize(graph, size, `--size ${size.text}`);
        if (resized === graph) return copies[role];
        const to = `onnx/${dir}/model.${size.text}.onnx`;
        writeRespecialisedOnnx(src, resized, join(folder, to));
        files[to] = sha256File(join(folder, to));
        return to;
      };
      for (const role of ['transformer', 'vaeDecoder'] as const) graphs[role] = onnxAt(role, primary);
      const sizeGraphs = others.map((size) => ({ transformer: onnxAt('transformer', size), vaeDecoder: onnxAt('vaeDecoder', size) }));
      // Per-channel statistics given as .npy files travel too (numbers stay inline).
      const vae: Record<string, unknown> = { ...m.vae };
      for (const [k, v] of Object.entries(vae)) {
        if (typeof v === 'string') vae[k] = copy(resolve(dirname(m.path), v), `stats/${k}-${basename(v)}`);
      }
      if (checkpoint) Object.assign(vae, checkpoint.vae);
      summary.seconds = (performance.now() - start) / 1000;
      const manifest = {
        format: 'pipeline/1', family: m.family, name: m.name, tokenizer, graphs, modules: { ...MODULES }, ...(cfg ? { cfgModule: CFG_MODULE } : {}),
        ...(textModules.length ? { textModules: textEntries(textModules) } : {}),
        ...(sizeModules.length ? { sizeModules: sizeModules.map((x, i) => ({
          size: x.size, transformer: x.transformer.artifact, ...(x.cfg ? { cfgModule: x.cfg.artifact } : {}),
          ...(x.textModules ? { textModules: textEntries(x.textModules) } : {}), vaeDecoder: x.vaeDecoder.artifact, graphs: sizeGraphs[i],
        })) } : {}),
        sizes: sizes.map((x) => x.text), vaeScaleFactor: m.vaeScaleFactor, defaults: m.defaults, prompt: m.prompt, vae,
        adaptations: checkpoint ? m.adaptations.filter((a) => !CHECKPOINT_REPLACES.some((p) => a.startsWith(p))) : m.adaptations,
        ...(checkpoint ? { weights: { checkpoint: checkpoint.root } } : {}),
        ...(Object.keys(m.shapes).length ? { shapes: m.shapes } : {}),
        ...(summary.structureOnly.length ? { structureOnly: summary.structureOnly } : {}),
        compiled: { target, arch: TARGETS[target as keyof typeof TARGETS].arch, precision, source: relative(ROOT, source).startsWith('..') ? source : relative(ROOT, source) },
        files,
      };
      return { 'manifest.json': JSON.stringify(manifest, null, 2) + '\n' };
    });
    summary.seconds = (performance.now() - start) / 1000;
    return summary;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
