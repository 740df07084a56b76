/**
 * `npx tsx bench/host-overhead.ts [--iters N] [--per-request] [--png-sweep [--png-parts] [--photo FILE]] [--png-only] [--json]`: the host (CPU) work of one
 * full-size text-to-image request, per stage, with no GPU.
 *
 * Each family's pipeline (models/<family>/pipeline.ts) runs as `npx bench --e2e` runs it — through
 * gpuExecutorFactory and the GPU runtime's own host I/O (runtime/gpu/model.ts hostIo: checkInputs,
 * bfloat16 staging, the staged-input cache, output copies and decoding) — but the device is a host
 * buffer: copies in and out are memcpys, and the plan is instant (the output slots hold bfloat16
 * values drawn once at load: N(0,1) for the text encoders and transformers, U(-1.1, 1.1) for the
 * VAE so the image is noise, like synthetic weights give). Module I/O types are the full-size
 * artifacts' (artifacts/{flux2-dev,qwen-image}-h100-fp8/<module>/manifest.json, as compiled from
 * models/<family>/full.pipeline.json). So every figure is host work a real request also does; the
 * memcpys stand in for the pageable cuMemcpy copies (which on the GPU host cost about as much).
 *
 * Per request (1024x1024, 8 steps; Qwen-Image with true CFG, a negative prompt): the pipeline's
 * own stage timings (text encode, denoise, VAE decode incl. RGB8) and the PNG encode the bench
 * does (runtime/pipeline/png.ts, default settings), each split into the time inside the modules'
 * run() (staging + copies + decoding) and the rest (pipeline code). Median of --iters requests
 * after one warm-up; `--per-request` also prints each request's stages, the warm-up's included (the
 * first requests after a load can differ: bench/RESULTS.md "Session 36"). `--png-sweep` adds the PNG encoder's time and size per zlib level / strategy /
 * filter and per number of parts deflated in parallel, on a noise image, a natural-like one and,
 * with `--photo FILE`, a photograph resized to 1024x1024 by sharp (png.ts's header records the
 * choice), every encoder once per round (interleaved); `--png-parts` times only the defaults per
 * part count; `--png-only` skips the pipelines.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { ROOT } from '../compiler/paths.ts';
import { checkInputs, type IoSpec, type Manifest } from '../runtime/gpu/artifact.ts';
import { hostIo, intactInputs } from '../runtime/gpu/model.ts';
import { type OutputLedger, claimReplica, replicaSource } from '../runtime/gpu/device-output.ts';
import type { Tensor } from '../compiler/ir/tensor.ts';
import { type CompiledModule, type GpuLoadOptions, gpuExecutorFactory, parseValueType } from '../runtime/executor/gpu.ts';
import type { Executor, ExecutorFactory } from '../runtime/executor/types.ts';
import { loadPipeline } from '../runtime/pipeline/load.ts';
import { type Family, type PipelineManifest, ROLES, type Role, parseSize } from '../runtime/pipeline/manifest.ts';
import { MAX_PARTS, type PngFilter, encodePngAsync, filterRows } from '../runtime/pipeline/png.ts';
import { constants as Z } from 'node:zlib';
import type { GenerateRequest } from '../runtime/pipeline/types.ts';
import { bytesFor } from '../compiler/ir/dtype.ts';
import { DEFAULT_PROMPT, NEGATIVE_PROMPT } from './e2e.ts';

/** The full-size compiled modules' I/O (their manifest.json `inputs` / `outputs`). */
export const FULL_IO: Record<Family, Record<Role, { inputs: Record<string, string>; outputs: Record<string, string> }>> = {
  flux2: {
    textEncoder: { inputs: { input_ids: 'int64[1,512]', attention_mask: 'int64[1,512]' }, outputs: { prompt_embeds: 'bfloat16[1,512,15360]' } },
    transformer: {
      inputs: { hidden_states: 'bfloat16[1,4096,128]', encoder_hidden_states: 'bfloat16[1,512,15360]', timestep: 'bfloat16[1]', img_ids: 'int64[1,4096,4]', txt_ids: 'int64[1,512,4]', guidance: 'bfloat16[1]' },
      outputs: { sample: 'bfloat16[1,4096,128]' },
    },
    vaeDecoder: { inputs: { latents: 'bfloat16[1,32,128,128]' }, outputs: { sample: 'bfloat16[1,3,1024,1024]' } },
  },
  qwen_image: {
    textEncoder: { inputs: { input_ids: 'int64[1,290]', attention_mask: 'int64[1,290]' }, outputs: { prompt_embeds: 'bfloat16[1,290,3584]' } },
    transformer: {
      inputs: { hidden_states: 'bfloat16[1,4096,64]', encoder_hidden_states: 'bfloat16[1,256,3584]', encoder_hidden_states_mask: 'int64[1,256]', timestep: 'bfloat16[1]' },
      outputs: { sample: 'bfloat16[1,4096,64]' },
    },
    vaeDecoder: { inputs: { latents: 'bfloat16[1,16,1,128,128]' }, outputs: { sample: 'bfloat16[1,3,1,1024,1024]' } },
  },
};

/** Deterministic uniform [0, 1) stream. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

export interface FakeOptions extends GpuLoadOptions {
  /** Called at each execute with the bytes of every input slot (tests compare them). */
  onExecute?: (role: Role, slots: Uint8Array[]) => void;
  /** Called at each copy of an output to the host (tests count them). */
  onRead?: (role: Role, offset: number) => void;
  /** Put NaNs with payloads, infinities and -0 among each output's values (tests). */
  edgeValues?: boolean;
}

/** The stand-in device memory: each fake module's arena at its own address (a copy on the device finds its source by address). */
const fakeMemory = new Map<number, Uint8Array>();
let fakeArenas = 0;
const noDriver = { call: () => undefined };

/**
 * A module whose device is a host buffer: the runtime's own host I/O (runtime/gpu/model.ts hostIo) around an instant plan;
 * its outputs can be left on the device (RunOptions.outputsOnDevice) and copied from there into another fake module's arena.
 */
export function fakeModule(role: Role, io: { inputs: Record<string, string>; outputs: Record<string, string> }, time: Map<Role, number>, options: FakeOptions = {}): CompiledModule {
  let offset = 0;
  const spec = (name: string, type: string): IoSpec => {
    const v = parseValueType(name, type);
    const shape = v.shape as number[];
    const bytes = bytesFor(v.dtype, shape.reduce((a, b) => a * b, 1));
    const s = { name, dtype: v.dtype, shape, offset, bytes };
    offset += Math.ceil(bytes / 256) * 256;
    return s;
  };
  const m = { model: role, io: { inputs: Object.entries(io.inputs).map(([n, t]) => spec(n, t)), outputs: Object.entries(io.outputs).map(([n, t]) => spec(n, t)) }, launchPlan: [], values: {} } as unknown as Manifest;
  const arena = Buffer.alloc(offset);
  const rand = lcg(role.length * 7919);
  for (const o of m.io.outputs) {
    // N(0,1) (Box-Muller) for text encoders / transformers, uniform (-1.1, 1.1) for the VAE (a noise image, clipped at the ends); bfloat16 by truncation.
    const v = new Float32Array(o.bytes / 2);
    for (let i = 0; i < v.length; i += 2) {
      if (role === 'vaeDecoder') { v[i] = 2.2 * rand() - 1.1; v[i + 1] = 2.2 * rand() - 1.1; continue; }
      const r = Math.sqrt(-2 * Math.log(1 - rand())), t = 2 * Math.PI * rand();
      v[i] = r * Math.cos(t);
      v[i + 1] = r * Math.sin(t);
    }
    const h = new Uint16Array(arena.buffer, arena.byteOffset + o.offset, v.length), u = new Uint32Array(v.buffer);
    for (let i = 0; i < v.length; i++) h[i] = u[i] >>> 16;
  }
  if (options.edgeValues) {
    for (const o of m.io.outputs) new Uint16Array(arena.buffer, arena.byteOffset + o.offset, 12).set([0xffc1, 1, 0x7f81, 2, 0x7f80, 3, 0x8000, 4, 0xff80, 5, 0x7fc0, 6]);
  }
  const base = 2 ** 40 * ++fakeArenas, ledger: OutputLedger = { generation: [0], reads: [[]] };
  fakeMemory.set(base, arena);
  let open = true;
  const execute = () => options.onExecute?.(role, m.io.inputs.map((i) => arena.subarray(i.offset, i.offset + i.bytes)));
  const host = hostIo(m.io, intactInputs(m), {
    toDevice: (off, bytes) => arena.set(bytes, off),
    execute,
    fromDevice: (off, into) => { options.onRead?.(role, off); into.set(arena.subarray(off, off + into.length)); },
    claim: () => claimReplica(noDriver, ledger, 0, 0n),
    copyFrom: (off, src) => {
      const from = fakeMemory.get(2 ** 40 * Math.floor(src.ptr / 2 ** 40))!, at = src.ptr % 2 ** 40;
      arena.set(from.subarray(at, at + src.bytes), off);
      return true;
    },
    source: (off, bytes) => replicaSource(ledger, 0, 0, base + off, bytes, () => open),
  }, { bf16Bits: options.bf16Bits });
  const timed = <T>(f: () => T): T => {
    const t = performance.now();
    const out = f();
    time.set(role, (time.get(role) ?? 0) + performance.now() - t);
    return out;
  };
  const check = (given: Record<string, Tensor>) => checkInputs(m, Object.fromEntries(Object.entries(given).map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape }])));
  return {
    run: (given) => timed(() => { check(given); return host.run(given); }),
    // One input set (one replica): staged and run now, collected (left on the device where asked) by finish().
    start: (list, o) => {
      timed(() => { check(list[0]); host.stage(list[0]); execute(); });
      return () => timed(() => [host.collect({ onDevice: o?.outputsOnDevice })]);
    },
    close() { open = false; host.clear(); fakeMemory.delete(base); },
  };
}

/** The family's full-size pipeline description with fake compiled modules (manifest.json of their I/O in a temp folder). */
export function fakeManifest(family: Family, dir: string): PipelineManifest {
  const file = join(ROOT, 'models', family, 'full.pipeline.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { sizes: string[] };
  const modules = Object.fromEntries(ROLES.map((role) => {
    const d = join(dir, family, role);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'manifest.json'), JSON.stringify(FULL_IO[family][role]));
    return [role, d];
  })) as Record<Role, string>;
  return {
    ...(raw as unknown as PipelineManifest),
    path: file,
    tokenizer: resolve(join(ROOT, 'models', family), raw.tokenizer as string),
    graphs: { textEncoder: 'absent.onnx', transformer: 'absent.onnx', vaeDecoder: 'absent.onnx' },
    modules,
    sizes: raw.sizes.map((s) => parseSize(s)!),
    prompt: (raw.prompt ?? {}) as Record<string, unknown>,
    vae: (raw.vae ?? {}) as Record<string, unknown>,
    shapes: {},
    adaptations: [],
  };
}

interface Row { stage: string; ms: number; inModules: number }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function familyRows(family: Family, iters: number, dir: string, perRequest = false): Promise<{ rows: Row[]; pngBytes: number }> {
  const m = fakeManifest(family, dir);
  const time = new Map<Role, number>();
  const roleOf = (d: string) => ROLES.find((r) => m.modules![r] === d)!;
  const runtime = { loadModel: (d: string, o?: GpuLoadOptions) => fakeModule(roleOf(d), FULL_IO[family][roleOf(d)], time, o) };
  const factory: ExecutorFactory = gpuExecutorFactory(runtime);
  const pipeline = await loadPipeline(m, factory);
  const req: GenerateRequest = {
    prompt: DEFAULT_PROMPT, size: m.sizes[0], steps: m.defaults.steps, guidanceScale: m.defaults.guidanceScale, seed: 42,
    ...(family === 'qwen_image' ? { negativePrompt: NEGATIVE_PROMPT } : {}),
  };
  const samples: Record<string, number[]> = {};
  const add = (k: string, v: number) => (samples[k] ??= []).push(v);
  let pngBytes = 0;
  for (let i = 0; i <= iters; i++) {
    time.clear();
    const t0 = performance.now();
    const img = await pipeline.generate(req);
    const t1 = performance.now();
    const png = await encodePngAsync(img.rgb, img.width, img.height);
    const t2 = performance.now();
    pngBytes = png.length;
    if (perRequest) {
      const inModule = (r: Role) => (time.get(r) ?? 0).toFixed(1);
      console.log(`${family} request ${i}${i ? '' : ' (warm-up)'}: text encode ${img.timings.encodeMs.toFixed(1)} ms (${inModule('textEncoder')} in its module), denoise ${img.timings.denoiseMs.toFixed(1)} (${inModule('transformer')}), VAE decode + RGB8 ${img.timings.decodeMs.toFixed(1)} (${inModule('vaeDecoder')}), PNG ${(t2 - t1).toFixed(1)}`);
    }
    if (i === 0) continue; // warm-up
    add('text encode', img.timings.encodeMs); add('text encode/in modules', time.get('textEncoder') ?? 0);
    add('denoise', img.timings.denoiseMs); add('denoise/in modules', time.get('transformer') ?? 0);
    add('VAE decode + RGB8', img.timings.decodeMs); add('VAE decode + RGB8/in modules', time.get('vaeDecoder') ?? 0);
    add('PNG encode', t2 - t1); add('PNG encode/in modules', 0);
    add('total', t2 - t0); add('total/in modules', [...time.values()].reduce((a, b) => a + b, 0));
  }
  await pipeline.release();
  const rows = ['text encode', 'denoise', 'VAE decode + RGB8', 'PNG encode', 'total'].map((stage) => ({ stage, ms: median(samples[stage]), inModules: median(samples[`${stage}/in modules`]) }));
  return { rows, pngBytes };
}

/** A noise image (what synthetic weights give): uniform bytes. */
export function noiseImage(width: number, height: number): Uint8Array {
  const rand = lcg(11);
  return Uint8Array.from({ length: width * height * 3 }, () => (rand() * 256) | 0);
}

/**
 * A natural-like image: smooth sky and ground gradients, fractal value noise at several octaves
 * (texture with structure at every scale), a soft disc, hard edges where the "hills" meet the
 * sky, and +-2 levels of sensor noise — closer to a photograph's statistics than noise or flat art.
 */
export function naturalImage(width: number, height: number): Uint8Array {
  const rand = lcg(5);
  const grids = [8, 16, 32, 64, 128].map((g) => ({ g, v: Float32Array.from({ length: (g + 1) * (g + 1) }, rand) }));
  const smooth = (t: number) => t * t * (3 - 2 * t);
  const value = (x: number, y: number) => {
    let sum = 0, amp = 1, norm = 0;
    for (const { g, v } of grids) {
      const fx = (x / width) * g, fy = (y / height) * g;
      const ix = Math.min(g - 1, Math.floor(fx)), iy = Math.min(g - 1, Math.floor(fy));
      const tx = smooth(fx - ix), ty = smooth(fy - iy);
      const a = v[iy * (g + 1) + ix], b = v[iy * (g + 1) + ix + 1], c = v[(iy + 1) * (g + 1) + ix], d = v[(iy + 1) * (g + 1) + ix + 1];
      sum += amp * ((a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty);
      norm += amp;
      amp *= 0.55;
    }
    return sum / norm;
  };
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    const n = value(x, y);
    const horizon = height * (0.55 + 0.12 * Math.sin(x / 97) + 0.2 * (value(x, 0) - 0.5));
    const sun = Math.max(0, 1 - Math.hypot(x - 0.7 * width, y - 0.25 * height) / (0.08 * width));
    let r: number, g: number, b: number;
    if (y < horizon) {
      const t = y / horizon;
      r = 90 + 80 * t + 40 * n + 150 * sun; g = 140 + 60 * t + 30 * n + 130 * sun; b = 230 - 30 * t + 20 * n + 60 * sun;
    } else {
      const t = (y - horizon) / (height - horizon);
      r = 60 + 60 * n - 20 * t; g = 110 + 90 * n - 30 * t; b = 40 + 40 * n;
    }
    const o = (y * width + x) * 3;
    out[o] = Math.max(0, Math.min(255, Math.round(r + (rand() * 5 - 2.5))));
    out[o + 1] = Math.max(0, Math.min(255, Math.round(g + (rand() * 5 - 2.5))));
    out[o + 2] = Math.max(0, Math.min(255, Math.round(b + (rand() * 5 - 2.5))));
  }
  return out;
}

export interface PngCase { level: number; strategy: 'default' | 'rle' | 'filtered'; filter: PngFilter; parts: number | 'auto' }

/**
 * PNG encode time (median of `reps`) and size per setting, on a noise and a natural-like 1024x1024
 * image (and `extra`): every setting through encodePngAsync (the server's call), one deflate
 * (parts 1) per level / strategy / filter, then the defaults (filter up, Z_RLE) in 1-16 parts and
 * 'auto'; and 'up' filtering alone, the serial share of the parallel encoder.
 */
export async function pngSweep(reps: number, extra: Record<string, Uint8Array> = {}, partsOnly = false): Promise<{ image: string; encoder: string; ms: number; bytes: number }[]> {
  const W = 1024, H = 1024;
  const images: Record<string, Uint8Array> = { noise: noiseImage(W, H), natural: naturalImage(W, H), ...extra };
  const strategies = { default: Z.Z_DEFAULT_STRATEGY, rle: Z.Z_RLE, filtered: Z.Z_FILTERED };
  const cases: PngCase[] = [];
  for (const level of [1, 2, 3, 4, 5, 6]) cases.push({ level, strategy: 'default', filter: 'none', parts: 1 });
  for (const level of [1, 6]) for (const filter of ['sub', 'up'] as const) cases.push({ level, strategy: 'default', filter, parts: 1 });
  for (const filter of ['none', 'sub', 'up'] as const) cases.push({ level: 6, strategy: 'rle', filter, parts: 1 });
  cases.push({ level: 1, strategy: 'rle', filter: 'up', parts: 1 });
  cases.push({ level: 6, strategy: 'filtered', filter: 'sub', parts: 1 });
  for (const parts of [2, 3, 4, 8, 12, 16, 'auto'] as const) cases.push({ level: 6, strategy: 'rle', filter: 'up', parts });
  for (const parts of [2, 4] as const) cases.push({ level: 1, strategy: 'default', filter: 'up', parts });
  type Enc = { encoder: string; f: () => Buffer | Promise<Buffer> };
  const out: { image: string; encoder: string; ms: number; bytes: number }[] = [];
  let sharp: typeof import('sharp') | undefined;
  if (!partsOnly) try { sharp = (await import('sharp')).default as unknown as typeof import('sharp'); } catch { /* the GPU host's bundle has no sharp */ }
  for (const [image, rgb] of Object.entries(images)) {
    const encs: Enc[] = (partsOnly ? cases.filter((c) => c.strategy === 'rle' && c.filter === 'up' && c.level === 6) : cases).map((c) => ({
      encoder: `png.ts level ${c.level} ${c.strategy} filter ${c.filter} parts ${c.parts}`,
      f: () => encodePngAsync(rgb, W, H, { level: c.level, strategy: strategies[c.strategy], filter: c.filter, parts: c.parts }),
    }));
    encs.push({ encoder: `png.ts encodePngAsync defaults (auto = ${MAX_PARTS} here)`, f: () => encodePngAsync(rgb, W, H) });
    encs.push({ encoder: "filterRows 'up' alone (no deflate)", f: () => filterRows(rgb, W, H, 'up') });
    if (sharp) {
      const s = sharp as unknown as (b: Buffer, o: object) => { png(o: object): { toBuffer(): Promise<Buffer> } };
      const raw = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
      for (const [name, o] of [['sharp png() defaults', {}], ['sharp compressionLevel 1', { compressionLevel: 1 }], ['sharp compressionLevel 6 adaptiveFiltering', { compressionLevel: 6, adaptiveFiltering: true }], ['sharp compressionLevel 1 adaptiveFiltering', { compressionLevel: 1, adaptiveFiltering: true }]] as const) {
        encs.push({ encoder: name, f: () => s(raw, { raw: { width: W, height: H, channels: 3 } }).png(o).toBuffer() });
      }
    }
    // Rounds: each encoder once per round (a warm-up round first), so a slow spell of a shared machine falls on all of them alike, in a
    // shuffled order (in a fixed order an encoder's place in the round biased it by up to 10 ms: what the one before it left to collect).
    const ms = encs.map(() => [] as number[]), bytes = encs.map(() => 0), order = encs.map((_, k) => k), rand = lcg(17);
    for (let i = 0; i <= reps; i++) {
      for (let j = order.length - 1; j > 0; j--) { const r = Math.floor(rand() * (j + 1)); [order[j], order[r]] = [order[r], order[j]]; }
      for (const k of order) {
        const t = performance.now();
        bytes[k] = (await encs[k].f()).length;
        if (i) ms[k].push(performance.now() - t);
      }
    }
    for (const [k, e] of encs.entries()) out.push({ image, encoder: e.encoder, ms: median(ms[k]), bytes: bytes[k] });
  }
  return out;
}

function main(): Promise<void> | void {
  const args = process.argv.slice(2);
  const iters = Number(args[args.indexOf('--iters') + 1]) || 5;
  const dir = mkdtempSync(join(tmpdir(), 'host-overhead-'));
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return (async () => {
    const out: Record<string, unknown> = { cpu, cores: cpus().length, node: process.version, iters };
    console.log(`host work per request, no GPU (device = memcpy), ${cpu}, ${cpus().length} cores, Node ${process.version}, median of ${iters} after a warm-up`);
    for (const family of args.includes('--png-only') ? [] : ['flux2', 'qwen_image'] as const) {
      const { rows, pngBytes } = await familyRows(family, iters, dir, args.includes('--per-request'));
      out[family] = { rows, pngBytes };
      console.log(`\n${family}  (PNG ${(pngBytes / 1e6).toFixed(2)} MB)`);
      console.log('stage                 ms   in modules   pipeline');
      for (const r of rows) console.log(`${r.stage.padEnd(18)} ${r.ms.toFixed(1).padStart(7)} ${r.inModules.toFixed(1).padStart(11)} ${(r.ms - r.inModules).toFixed(1).padStart(10)}`);
    }
    if (args.includes('--png-sweep')) {
      const extra: Record<string, Uint8Array> = {};
      const photo = args.includes('--photo') ? args[args.indexOf('--photo') + 1] : undefined;
      if (photo) {
        const sharp = (await import('sharp')).default;
        extra.photo = new Uint8Array(await sharp(photo).removeAlpha().resize(1024, 1024, { fit: 'fill' }).raw().toBuffer());
      }
      const rows = await pngSweep(Math.max(3, iters), extra, args.includes('--png-parts'));
      out.png = rows;
      console.log('\nPNG 1024x1024: image, encoder, ms (median), MB');
      for (const r of rows) console.log(`${r.image.padEnd(8)} ${r.encoder.padEnd(52)} ${r.ms.toFixed(1).padStart(7)} ${(r.bytes / 1e6).toFixed(3).padStart(7)}`);
    }
    if (args.includes('--json')) console.log(JSON.stringify(out));
  })();
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('host-overhead.ts')) await main();
