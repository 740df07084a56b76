/**
 * `npx bench --e2e`: one whole text-to-image request on the GPU, per stage, against diffusers'
 * stages on the same card in the same run.
 *
 *   compiled   the pipeline artifact (artifacts/flux2-dev-h100-fp8, artifacts/qwen-image-h100-fp8;
 *              compiled now from models/<family>/full.pipeline.json when absent; with `size`, the
 *              default one where it (or, not yet compiled, its description) lists that size, else the
 *              default's name with -WxH, compiled for that size alone when absent) loaded whole — text
 *              encoder, transformer, VAE decoder together, every learned weight synthetic from the
 *              seed (gpuExecutorFactory's syntheticWeights: labelled in every description and row) —
 *              and run through the family's own pipeline (models/<family>/pipeline.ts: tokenizer,
 *              prompt template, its scheduler — Flux.2's empirical mu, Qwen-Image's shift with true
 *              CFG at guidanceScale = true_cfg_scale — Euler steps, latent unpacking, VAE decode,
 *              RGB8) and a PNG encode (runtime/pipeline/png.ts). One warm-up request (it captures
 *              each module's CUDA graph), then `iters` requests: per stage (text encode, denoise,
 *              VAE decode, image encode) the median wall time, host work and copies included. Then
 *              each module's CUDA-graph replay alone (device time) times its calls per request, and
 *              the GPU memory the three modules hold together; and the board's energy over the timed
 *              requests (NVML's counter: joules an image, idle gaps included; not measured without NVML).
 *   baseline   bench/gpu/baseline_e2e.py in a child process once the compiled pipeline is released:
 *              transformers' text encoder of the export's config and taps, diffusers' transformer for
 *              the same steps (and CFG passes), diffusers' VAE decode and a PIL PNG, bf16, synthetic
 *              weights, each stage built, timed and freed in turn (the bf16 Flux.2 pipeline does not
 *              fit one 80 GB card whole).
 *
 * Token ids: the real tokenizers are not on these machines; the bundled test tokenizer's ids (all
 * below 497, so valid ids of both real vocabularies) fill the real sequence lengths, so the text
 * encoders do their real work; the images are noise. The runtime and the Python baseline are
 * parameters (e2eBench's `deps`), so the flow and the accounting are tested without a GPU.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../compiler/paths.ts';
import { empiricalMu } from '../models/flux2/scheduler.ts';
import { calculateShift } from '../models/qwen_image/scheduler.ts';
import { type CompiledModule, type GpuLoadOptions, type GpuRuntime, gpuExecutorFactory, syntheticLabel } from '../runtime/executor/gpu.ts';
import type { ArenaLender, WeightsDonor } from '../runtime/gpu/model.ts';
import { type Nvml, energyWindow, openNvml } from '../runtime/gpu/nvml.ts';
import { loadPipeline } from '../runtime/pipeline/load.ts';
import { type PipelineManifest, loadManifest, ROLES, type Role } from '../runtime/pipeline/manifest.ts';
import { formatSize } from '../runtime/pipeline/types.ts';
import { TextTokenizer } from '../runtime/pipeline/tokenizer.ts';
import { DEFAULT_SETTINGS as QWEN_PROMPT, TOKENIZER_MAX_LENGTH, resolveDropTokens, tokenizePrompt } from '../models/qwen_image/prompt.ts';
import { PNG_DEFAULTS, encodePngAsync } from '../runtime/pipeline/png.ts';
import type { ReportHeader } from './report.ts';
import type { GenerateRequest, GeneratedImage } from '../runtime/pipeline/types.ts';
import { sha256 } from '../compiler/hash.ts';
import type { Tensor } from '../compiler/ir/tensor.ts';
import type { DenoiseLoop, RunOptions } from '../runtime/executor/types.ts';

export const E2E_FAMILIES = ['flux2', 'qwen_image'] as const;
export type E2eFamily = (typeof E2E_FAMILIES)[number];

/** Per family: the pipeline description, the default artifact, whether a request runs true CFG. */
export const E2E_PIPELINES: Record<E2eFamily, { title: string; description: string; artifact: string; cfg: boolean }> = {
  flux2: { title: 'Flux.2 [dev]', description: 'models/flux2/full.pipeline.json', artifact: 'artifacts/flux2-dev-h100-fp8', cfg: false },
  qwen_image: { title: 'Qwen-Image', description: 'models/qwen_image/full.pipeline.json', artifact: 'artifacts/qwen-image-h100-fp8', cfg: true },
};

export const DEFAULT_PROMPT = 'a red fox jumps over the lazy dog under a blue sky with white clouds';
export const NEGATIVE_PROMPT = ' ';

export const STAGES = ['textEncode', 'denoise', 'vaeDecode', 'imageEncode'] as const;
export type Stage = (typeof STAGES)[number];
export type StageMs = Record<Stage, number> & { total: number };

/** A module the bench can also time alone (runtime/gpu/model.ts's Model). */
export interface TimedModule extends CompiledModule {
  time(n: number, graph: boolean): { medianMs: number };
  readonly memory: { arenaBytes: number; weightBytes: number; workspaceBytes: number; deviceUsedBytes: number };
  /** pciBusId: the board NVML reads the energy of (runtime/gpu/nvml.ts). */
  readonly device?: { name: string; pciBusId?: string };
}
export interface E2eRuntime { loadModel(dir: string, options?: GpuLoadOptions): TimedModule }

export interface E2eDeps {
  runtime: E2eRuntime;
  /** Runs the Python baseline for a family; resolves to its JSON, or a reason it has none. */
  baseline?: (family: E2eFamily, o: E2eOptions, lengths: { encoder: number[]; text: number[] }) => BaselineJson | string;
  now?: () => number;
  /** Compiles a missing artifact (default: compilePipeline of the family's description). */
  compile?: (description: string, out: string, sizes?: string[]) => Promise<void>;
  /** Where the default artifacts (E2E_PIPELINES[family].artifact) live (default: the repository root). */
  artifactRoot?: string;
  /** The board's energy counter by PCI bus id (default: NVML, runtime/gpu/nvml.ts; undefined: not measured). */
  nvml?: (pciBusId: string) => Nvml | undefined;
}

export interface E2eOptions {
  families: E2eFamily[];
  seed: number;
  steps: number;
  /** Timed requests after the warm-up. */
  iters: number;
  artifacts: Partial<Record<E2eFamily, string>>;
  baseline: boolean;
  baselineScript?: string;
  /** The denoising loop on the host (one round trip per step) even where the device loop exists: what the device loop gains. */
  hostLoop?: boolean;
  /** The requests' image size ("WxH"; default the artifact's first): the artifact must list it, the baseline runs it too. */
  size?: string;
  prompt?: string;
  guidanceScale?: number;
}

export interface E2eRow {
  family: E2eFamily;
  system: string;
  stages: StageMs;
  memoryGiB?: number;
  /** The board's energy over the timed requests (NVML's counter), a request: what an image costs the GPU, idle gaps included. */
  joulesPerImage?: number;
  /** The median request's denoising steps on the device, summed (StageTimings.stepsMs; a loop on the device only). */
  stepsDeviceMs?: number;
  note?: string;
}

/** Device time of one module per request: its CUDA-graph replay alone, times its calls. */
/** `transformerCfg`: the transformer compiled at batch 2 (a pipeline's cfgModule), one call per CFG pair. `textLength`: a transformer compiled for a shorter text (textModules). */
export interface ModuleTime { role: Role | 'transformerCfg'; textLength?: number; msPerCall: number; calls: number; ms: number; memoryGiB: number }

export interface E2eResult extends ReportHeader {
  kind: 'e2e';
  tokens: string;
  rows: E2eRow[];
  modules: Partial<Record<E2eFamily, ModuleTime[]>>;
  /** Acceptance targets (issue 9), ms end to end. */
  targets: Partial<Record<E2eFamily, number>>;
}

export interface BaselineJson {
  device: string;
  torch: string;
  weights: string;
  stages: Partial<Record<'text_encoder' | 'denoise' | 'vae_decode' | 'image_encode', { ms: number; calls: number; ms_per_call?: number; peak_gib?: number }>>;
  notes: string[];
}

export const TARGET_MS: Record<E2eFamily, number> = { flux2: 2300, qwen_image: 1500 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** One request's stages from the pipeline's own timings and the PNG encode; total = their sum. */
export function stagesOf(timings: GeneratedImage['timings'], imageEncodeMs: number): StageMs {
  const s = { textEncode: timings.encodeMs, denoise: timings.denoiseMs, vaeDecode: timings.decodeMs, imageEncode: imageEncodeMs };
  for (const [k, v] of Object.entries(s)) if (!(Number.isFinite(v) && v >= 0)) throw new Error(`stage ${k}: expected a time in ms, found ${v}`);
  return { ...s, total: s.textEncode + s.denoise + s.vaeDecode + s.imageEncode };
}

/** The timed requests' denoising steps on the device (StageTimings.stepsMs): their device time's median and range, each request's sum against its denoise stage. */
export function stepSummary(requests: readonly number[][]): string {
  const all = requests.flat();
  const fmt = (x: number) => x.toFixed(1);
  const sums = requests.map((r) => r.reduce((a, b) => a + b, 0));
  return `denoising steps inside the timed requests, device time (CUDA events on the loop's stream): median ${fmt(median(all))} ms a step (${fmt(Math.min(...all))}-${fmt(Math.max(...all))}; first steps ${requests.map((r) => fmt(r[0])).join(' / ')}), ${sums.map(fmt).join(' / ')} ms a request`;
}

/** Per stage the median over requests; total = the median of the requests' totals (not the sum of medians). */
export function medianStages(runs: StageMs[]): StageMs {
  if (!runs.length) throw new Error('medianStages: no requests timed');
  const out = Object.fromEntries(STAGES.map((k) => [k, median(runs.map((r) => r[k]))])) as Record<Stage, number>;
  return { ...out, total: median(runs.map((r) => r.total)) };
}

/** The diffusers row from the baseline's JSON: its stages as the same four, total their sum; missing stages make no row. */
export function baselineRow(family: E2eFamily, b: BaselineJson): E2eRow | string {
  const { text_encoder: te, denoise, vae_decode: vae, image_encode: img } = b.stages;
  if (!te || !denoise || !vae || !img) {
    const missing = Object.entries({ text_encoder: te, denoise, vae_decode: vae, image_encode: img }).filter(([, v]) => !v).map(([k]) => k);
    return `${family}: the diffusers baseline lacks ${missing.join(', ')}${b.notes.length ? ` (${b.notes.join('; ')})` : ''}`;
  }
  const stages = { textEncode: te.ms, denoise: denoise.ms, vaeDecode: vae.ms, imageEncode: img.ms };
  const peak = Math.max(te.peak_gib ?? 0, denoise.peak_gib ?? 0, vae.peak_gib ?? 0);
  return {
    family, system: 'diffusers (bf16, eager; stages one at a time)', stages: { ...stages, total: stages.textEncode + stages.denoise + stages.vaeDecode + stages.imageEncode },
    memoryGiB: peak || undefined, note: `peak of the largest stage alone; ${b.weights}; torch ${b.torch}`,
  };
}

function defaultBaseline(script: string | undefined) {
  return (family: E2eFamily, o: E2eOptions, lengths: { encoder: number[]; text: number[] }): BaselineJson | string => {
    const env = { ...process.env, PYTHONPATH: [process.env.DIFFUSERS_SRC, process.env.PYTHONPATH].filter(Boolean).join(':'), PYTHONUNBUFFERED: '1' };
    if (spawnSync('python3', ['-c', 'import diffusers, transformers, torch'], { env, stdio: 'ignore' }).status !== 0) {
      return 'PyTorch baseline not run: diffusers, transformers or torch do not import here (pip install diffusers transformers, or DIFFUSERS_SRC=<checkout>/src)';
    }
    const out = join(mkdtempSync(join(tmpdir(), 'bench-e2e-')), 'baseline.json');
    const size = o.size ?? '1024x1024';
    const args = [script ?? join(ROOT, 'bench', 'gpu', 'baseline_e2e.py'), family, '--out', out, '--seed', String(o.seed), '--steps', String(o.steps), '--iters', String(Math.max(2, Math.min(o.iters, 3))), '--guidance', String(o.guidanceScale ?? 4),
      '--size', size, '--mu', String(scheduleMu(family, imageTokens(size), o.steps)),
      '--encoder-tokens', lengths.encoder.join(','), '--text-tokens', lengths.text.join(',')];
    const r = spawnSync('python3', args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    if (!existsSync(out)) return `${family}: the diffusers baseline failed (exit ${r.status}) before writing its JSON; see its output above`;
    return JSON.parse(readFileSync(out, 'utf8')) as BaselineJson;
  };
}

/**
 * The sequence lengths diffusers' own pipeline would run for this request, per prompt (Qwen-Image
 * with CFG: the prompt, then the negative prompt). Flux2Pipeline pads every prompt to 512, as the
 * compiled graphs; QwenImagePipeline runs each prompt unpadded, its text encoder on the templated ids
 * and its transformer on the rows kept after the template prefix — where the static compiled graphs
 * take 290 and 256. Counted with the tokenizer this request used (the test tokenizer, labelled).
 */
export function diffusersLengths(m: PipelineManifest, family: E2eFamily, prompts: string[]): { encoder: number[]; text: number[] } {
  if (family === 'flux2') return { encoder: prompts.map(() => 512), text: prompts.map(() => 512) };
  const tok = TextTokenizer.load(m.tokenizer);
  const template = typeof m.prompt.template === 'string' ? m.prompt.template : QWEN_PROMPT.template;
  const dropTokens = typeof m.prompt.dropTokens === 'number' || m.prompt.dropTokens === 'prefix' ? m.prompt.dropTokens : QWEN_PROMPT.dropTokens;
  const drop = resolveDropTokens(tok, { ...QWEN_PROMPT, template, dropTokens });
  const encoder = prompts.map((p) => tokenizePrompt(tok, p, template, TOKENIZER_MAX_LENGTH).length);
  return { encoder, text: encoder.map((n) => Math.max(1, Math.min(n - drop, QWEN_PROMPT.maxSequenceLength))) };
}

/** The shift parameter of the family's own schedule (models/<family>/scheduler.ts) at 1024x1024 (4096 image tokens). */
/** The transformer's image tokens at a size "WxH": 16 pixels a token side (both families). */
export const imageTokens = (size: string): number => { const [w, h] = size.split('x').map(Number); return (w / 16) * (h / 16); };

export function scheduleMu(family: E2eFamily, imageSeqLen: number, steps: number): number {
  return family === 'flux2' ? empiricalMu(imageSeqLen, steps) : calculateShift(imageSeqLen);
}

/** A runtime that remembers each module it loads (by folder) and counts its runs, to time each alone per request afterwards. */
function recording(runtime: E2eRuntime, hostLoop: boolean): GpuRuntime & { loaded: Map<string, TimedModule>; runs: Map<string, number> } {
  const loaded = new Map<string, TimedModule>();
  const runs = new Map<string, number>();
  const unwrapped = new WeakMap<object, WeightsDonor & ArenaLender>();
  return {
    loaded, runs,
    loadModel: (dir, o) => {
      // A module lending its weights or its activation memory (GpuLoadOptions.weightsFrom, arenaFrom) reaches the runtime as itself, not as the counting wrapper below.
      const lender = (x: object | undefined) => (x ? unwrapped.get(x) ?? x : undefined);
      const m = runtime.loadModel(dir, o && {
        ...o, ...(o.weightsFrom ? { weightsFrom: lender(o.weightsFrom) as WeightsDonor } : {}), ...(o.arenaFrom ? { arenaFrom: lender(o.arenaFrom) as ArenaLender } : {}),
      });
      loaded.set(dir, m);
      runs.set(dir, 0);
      const count = (n: number) => runs.set(dir, runs.get(dir)! + n);
      const many = m.runMany?.bind(m), start = m.start?.bind(m), image = m.rgb8?.bind(m);
      const loop = hostLoop ? undefined : m.denoise?.bind(m);
      // A module compiled at batch N runs N input sets at once: one run each.
      const batch = (JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { batch?: number }).batch ?? 1;
      // Only the members the executor uses, each counting its runs (no spread of the module: a
      // member added to it later must be counted here before the executor can see it).
      const wrapper: CompiledModule = {
        memory: m.memory, close: () => m.close(),
        run: (inputs) => { count(1); return m.run(inputs); },
        ...(many ? { runMany: (list: Record<string, Tensor>[]) => { count(list.length); return many(list); } } : {}),
        ...(start ? { start: (list: Record<string, Tensor>[], options?: RunOptions) => { count(list.length); return start(list, options); } } : {}),
        ...(loop ? { denoise: (l: DenoiseLoop) => { count((l.timesteps.length * l.inputs.length) / batch); return loop(l); } } : {}),
        ...(image ? { rgb8: (x: Record<string, Tensor>) => { count(1); return image(x); } } : {}),
      };
      unwrapped.set(wrapper, m as unknown as WeightsDonor & ArenaLender);
      return wrapper;
    },
  };
}

/**
 * Modules of a pipeline artifact whose manifest lists launches without a kernel ("role: op xN").
 * Since adb473f every module of both full pipelines has a kernel for every launch; an artifact
 * compiled before that is refused by name before anything loads (delete it and the bench compiles
 * it again), where the runtime would refuse its first module only once loading began.
 */
export function pendingModules(manifest: PipelineManifest): string[] {
  return ROLES.flatMap((role) => {
    const file = manifest.modules ? join(manifest.modules[role], 'manifest.json') : undefined;
    if (!file || !existsSync(file)) return [];
    const pending = (JSON.parse(readFileSync(file, 'utf8')) as { pendingKernels?: Record<string, number> }).pendingKernels ?? {};
    return Object.keys(pending).length ? [`${role}: ${Object.entries(pending).map(([op, n]) => `${op} x${n}`).join(', ')}`] : [];
  });
}

export async function e2eBench(o: E2eOptions, deps: E2eDeps, log: (s: string) => void): Promise<Omit<E2eResult, 'kind' | 'date' | 'command'>> {
  const now = deps.now ?? (() => performance.now());
  const rows: E2eRow[] = [];
  const modules: E2eResult['modules'] = {};
  const notes: string[] = [];
  let device = 'unknown GPU';
  const baseline = o.baseline ? deps.baseline ?? defaultBaseline(o.baselineScript) : undefined;
  for (const family of o.families) {
    const p = E2E_PIPELINES[family];
    // The default artifact where it lists the size (or, not compiled yet, its description does), else one of that size beside it.
    const defaultDir = join(deps.artifactRoot ?? ROOT, p.artifact);
    const defaultSizes = () => (existsSync(join(defaultDir, 'manifest.json')) ? loadManifest(defaultDir) : loadManifest(join(ROOT, p.description))).sizes;
    const dir = o.artifacts[family] ?? (!o.size || defaultSizes().some((x) => formatSize(x) === o.size) ? defaultDir : `${defaultDir}-${o.size}`);
    if (!existsSync(join(dir, 'manifest.json'))) {
      const sizes = o.size && dir !== defaultDir ? [o.size] : undefined;
      log(`${family}: no pipeline artifact at ${dir}: compiling ${p.description}${sizes ? ` for ${o.size}` : ''}`);
      if (deps.compile) await deps.compile(join(ROOT, p.description), dir, sizes);
      else {
        const { compilePipeline } = await import('../compiler/pipeline-artifact.ts');
        await compilePipeline({ pipeline: join(ROOT, p.description), out: dir, ...(sizes ? { sizes } : {}) });
      }
    }
    const manifest = loadManifest(dir);
    if (manifest.family !== family) throw new Error(`${dir}: a ${manifest.family} pipeline artifact, not ${family}`);
    const stale = pendingModules(manifest);
    if (stale.length) throw new Error(`${dir}: modules with launches that have no kernel (${stale.join('; ')}): compiled before their ops got kernels; delete the artifact to compile it again`);
    const size = o.size ? manifest.sizes.find((x) => formatSize(x) === o.size) : manifest.sizes[0];
    if (!size) throw new Error(`${dir}: compiled for ${manifest.sizes.map(formatSize).join(', ')}, not ${o.size} (compile one with \`npx compile ${p.description} --size ${o.size}\`, or leave out --artifact)`);
    // The modules a request of this size runs: the first size's, or that size's (sizeModules) with the text encoder.
    const sized = size === manifest.sizes[0] ? undefined : manifest.sizeModules!.find((x) => formatSize(x.size) === formatSize(size))!;
    const rt = recording(deps.runtime, !!o.hostLoop);
    const t0 = now();
    const pipeline = await loadPipeline(manifest, gpuExecutorFactory(rt, { syntheticWeights: o.seed }));
    try {
      const loadS = (now() - t0) / 1000;
      // As the server does before it is ready: every module run once (CUDA graphs captured), then the warm-up request.
      const w0 = now();
      await pipeline.warmUp?.();
      log(`${family}: every module warmed in ${((now() - w0) / 1000).toFixed(1)} s`);
      const at = sized ? { ...manifest.modules!, transformer: sized.transformer, vaeDecoder: sized.vaeDecoder } : manifest.modules!;
      const cfgModule = sized ? sized.cfgModule : manifest.cfgModule;
      const dirs: [ModuleTime['role'], string, number?][] = [
        ...ROLES.map((role) => [role, at[role]] as [Role, string]),
        ...(cfgModule ? [['transformerCfg', cfgModule] as ['transformerCfg', string]] : []),
        ...((sized ? sized.textModules : manifest.textModules) ?? []).flatMap((t) => [['transformer', t.module, t.length] as [Role, string, number], ...(t.cfgModule ? [['transformerCfg', t.cfgModule, t.length] as ['transformerCfg', string, number]] : [])]),
      ];
      const mods = dirs.map(([role, d, textLength]) => {
        const m = rt.loaded.get(d);
        if (!m) throw new Error(`${dir}: the ${role} module ${d} was not loaded through the runtime`);
        return [role, m, d, textLength] as const;
      });
      device = mods[0][1].device?.name ?? device;
      const memoryBytes = mods.reduce((a, [, m]) => a + m.memory.deviceUsedBytes, 0);
      log(`${family}: loaded ${pipeline.executors.join(' | ')} in ${loadS.toFixed(1)} s; GPU memory ${(memoryBytes / 2 ** 30).toFixed(2)} GiB`);
      const req: GenerateRequest = {
        prompt: o.prompt ?? DEFAULT_PROMPT, size, steps: o.steps, guidanceScale: o.guidanceScale ?? manifest.defaults.guidanceScale, seed: o.seed,
        ...(p.cfg ? { negativePrompt: NEGATIVE_PROMPT } : {}),
      };
      const hashes: string[] = [];
      const stepsMs: number[][] = []; // each request's steps, device time (where the loop runs on the device)
      const request = async (): Promise<StageMs> => {
        const img = await pipeline.generate(req);
        if (img.timings.stepsMs) stepsMs.push(img.timings.stepsMs);
        const t = now();
        const png = await encodePngAsync(img.rgb, img.width, img.height, PNG_DEFAULTS); // the server's call (runtime/pipeline/image.ts encodeImage)
        const ms = now() - t;
        hashes.push(sha256(png));
        return stagesOf(img.timings, ms);
      };
      const before = new Map(rt.runs);
      const warm = await request();
      log(`${family}: warm-up request (captures the CUDA graphs) ${warm.total.toFixed(0)} ms`);
      const runs: StageMs[] = [];
      stepsMs.length = 0; // the timed requests' only
      const busId = mods[0][1].device?.pciBusId;
      const closeEnergy = energyWindow(busId ? (deps.nvml ?? openNvml)(busId) : undefined);
      for (let i = 0; i < o.iters; i++) runs.push(await request());
      const energy = closeEnergy(o.iters);
      const stages = medianStages(runs);
      notes.push(`${family}: the ${hashes.length} requests (warm-up included) gave ${new Set(hashes).size === 1 ? 'identical' : 'DIFFERENT'} PNG bytes (same seed and prompt; sha256 ${hashes[0].slice(0, 12)}...)`);
      // The step memo (runtime/gpu/memo.ts): the warm-up request computed every step's timestep-only launches, the timed ones restored them.
      if (mods.some(([, m]) => (m as { stepMemo?: boolean }).stepMemo)) {
        notes.push(`${family}: step memo on — the warm-up request (${warm.total.toFixed(0)} ms, also capturing the CUDA graphs) computed each step's timestep-only launches, the timed requests restored them (a first request of a size and step count runs them all; DC_STEP_MEMO_MB=0 measures without)`);
      }
      log(`${family}: compiled end to end ${stages.total.toFixed(0)} ms (text ${stages.textEncode.toFixed(0)}, denoise ${stages.denoise.toFixed(0)}, VAE ${stages.vaeDecode.toFixed(0)}, PNG ${stages.imageEncode.toFixed(0)})${energy ? `, ${energy.joulesPerRun.toFixed(0)} J an image (board, ${energy.meanWatts.toFixed(0)} W mean)` : ''}`);
      modules[family] = mods.map(([role, m, dirOf, textLength]) => {
        const calls = (rt.runs.get(dirOf)! - before.get(dirOf)!) / (o.iters + 1); // runs per request, counted
        // A module the requests never ran (the batch-1 transformer when every request pairs its CFG runs) has no graph to time: listed for its memory.
        const msPerCall = calls > 0 ? m.time(Math.max(3, o.iters), true).medianMs : 0;
        return { role, ...(textLength ? { textLength } : {}), msPerCall, calls, ms: msPerCall * calls, memoryGiB: m.memory.deviceUsedBytes / 2 ** 30 };
      });
      if (stepsMs.length) notes.push(`${family}: ${stepSummary(stepsMs)}`);
      rows.push({
        family, system: `compiled (${manifest.compiled?.precision ?? '?'}, CUDA graphs) ${syntheticLabel(o.seed)}`, stages, memoryGiB: memoryBytes / 2 ** 30,
        ...(energy ? { joulesPerImage: energy.joulesPerRun } : {}),
        ...(stepsMs.length ? { stepsDeviceMs: median(stepsMs.map((r) => r.reduce((a, b) => a + b, 0))) } : {}),
        note: `median of ${o.iters} requests after a warm-up; ${size.width}x${size.height}, ${o.steps} steps${p.cfg ? `, true CFG ${req.guidanceScale} (${cfgModule ? 'both predictions of a step in one batch-2 run' : '2 transformer runs per step'})` : `, guidance ${req.guidanceScale}`}; denoising loop on the ${!o.hostLoop && rt.loaded.get(at.transformer)?.denoise ? 'device' : 'host'}; load ${loadS.toFixed(1)} s`,
      });
    } finally {
      await pipeline.release();
    }
    if (!baseline) continue;
    const lengths = diffusersLengths(manifest, family, [o.prompt ?? DEFAULT_PROMPT, ...(p.cfg ? [NEGATIVE_PROMPT] : [])]);
    if (family === 'qwen_image') notes.push(`qwen_image baseline: diffusers runs each prompt unpadded — text encoder ${lengths.encoder.join(' and ')} positions, transformer ${lengths.text.join(' and ')} text tokens (test-tokenizer counts) — where the compiled static text encoder takes 290 and the compiled transformer the shortest of its text lengths (${[...(manifest.textModules ?? []).map((t) => t.length), 'the export\'s 256'].join(', ')}) that holds both prompts (module table).`);
    const b = baseline(family, { ...o, size: formatSize(size) }, lengths); // the size the compiled requests ran
    if (typeof b === 'string') { notes.push(b); continue; }
    const row = baselineRow(family, b);
    if (typeof row === 'string') notes.push(row);
    else rows.push(row);
    for (const n of b.notes) notes.push(`${family} baseline: ${n}`);
  }
  notes.push(
    'Token ids: the real tokenizers are not on these machines; the bundled test tokenizer (497 byte-level BPE tokens with the chat templates\' special tokens) tokenizes the prompt, its ids are valid ids of both real vocabularies, and the real sequence lengths are run (Flux.2: 512 left-padded; Qwen-Image: 290 encoder positions; the transformer\'s text padded to its compiled length).',
    'Synthetic weights: both sides draw every weight from the seed by the same rule, not the same values; the images are noise, and the comparison is of time only.',
    'Compiled stages are wall time of the whole pipeline (host work, copies, the scheduler, RGB8 conversion inside "VAE decode"); "device" rows below are each module\'s CUDA-graph replay alone times its calls per request.',
  );
  if (o.families.includes('flux2') && o.baseline) notes.push('Flux.2 baseline text encoder: MistralModel with the 30 layers the export keeps; diffusers\' Mistral3 text encoder runs all 40, so its real stage is about 4/3 of the figure here.');
  return { device, steps: o.steps, seed: o.seed, weights: `synthetic (seed ${o.seed})`, tokens: 'test tokenizer ids (synthetic prompt)', rows, modules, targets: Object.fromEntries(o.families.map((f) => [f, TARGET_MS[f]])), notes };
}
