/**
 * Opens a compiled artifact and checks it before anything touches the GPU.
 *
 * Checks, in order (the first failure is one line naming the file and what was wrong):
 *   1. manifest.json parses and has this runtime's format version;
 *   2. the target matches the device's compute capability (h100 -> 9.0, b200 -> 10.0; the cubins
 *      are arch-specific, sm_90a / sm_100a, and run on that exact capability only);
 *   3. no `pending` launches (ops without a kernel), named with their counts;
 *   4. every kernel file exists with the manifest's sha256, every launch names a known kernel, and
 *      its tensor-map parameters (the own FP8 GEMM's) lie inside their values, aligned, in boxes
 *      the copy engine takes;
 *   5. weights.bin has the indexed size (truncation) and sha256 (read streaming, 8 MiB at a time;
 *      with `partsLater` and part hashes in the manifest, left to the caller, which checks the parts
 *      on worker threads while it uploads: weights-check.ts), and every section lies inside it; a
 *      structure-only artifact needs synthetic weights;
 *   6. every launch argument resolves: arena ranges inside the arena, weights in the index,
 *      inputs among the graph inputs;
 *   7. the caller's inputs (when given) match the graph inputs by name, dtype and shape.
 *
 * Pure TypeScript over the file system: no driver needed, so every check is tested on the CPU.
 */
import { sha256, sha256File } from '../../compiler/hash.ts';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TensorMapArg } from '../../compiler/codegen/plan.ts';
import { fail } from '../../compiler/errors.ts';
import { type DType, bytesFor } from '../../compiler/ir/dtype.ts';
import type { WeightEntry } from '../../compiler/weights-file.ts';
import type { MemoPlan } from '../../compiler/memo.ts';
import type { WeightParts } from './weights-check.ts';

/** The artifact format this runtime reads (compiler/compile.ts ARTIFACT_FORMAT). */
export const RUNTIME_FORMAT = 4;
/** Compute capability each target's cubins run on. */
export const TARGET_CAPABILITY: Record<string, [number, number]> = { h100: [9, 0], b200: [10, 0] };

export interface LaunchArg { value: string; where: 'arena' | 'weight' | 'input'; offset?: number }
export type Grid = number | [number, number, number] | number[];
export type Launch =
  | { kind: 'kernel'; node: string; kernel: string; grid: Grid; block: Grid; sharedBytes: number; args: LaunchArg[];
      /** Parameters passed as tensor maps over an argument's address (compiler/codegen/plan.ts TensorMapArg). */
      maps?: TensorMapArg[] }
  | { kind: 'gemm'; node: string; precision: 'fp8' | 'nvfp4' | 'bf16' | 'high'; m: number; n: number; k: number; transB: boolean; bias: boolean; args: LaunchArg[];
      /** fp8 run with unit scales and no bias: the kernels reading the output apply them (compiler/codegen/dequant.ts). */
      unscaled?: boolean;
      /** fp8 accumulating without cuBLASLt's periodic fp32 promotion (the policy's `accumulation`). */
      fastAccum?: boolean;
      /** B is an activation too (compiler/codegen/plan.ts ActGemm): alpha and the operands' row strides. */
      act?: { alpha: number; lda: number; ldb: number } }
  | { kind: 'pending'; node: string; op: string; args: LaunchArg[] };

export interface IoSpec { name: string; dtype: DType; shape: number[]; offset: number; bytes: number }

export interface Manifest {
  format: number;
  target: string;
  arch: string;
  precision: string;
  model: string;
  /** Samples one run computes, for a module compiled with --batch N (absent: 1). */
  batch?: number;
  io: { inputs: IoSpec[]; outputs: IoSpec[] };
  /** Type of every launch argument, e.g. "bfloat16[1,4096,128]". */
  values: Record<string, string>;
  memory: { arenaBytes: number };
  files: Record<string, string>;
  kernels: { name: string; unit: string }[];
  launchPlan: Launch[];
  /** Launches a step can restore instead of computing, keyed by the small inputs they depend on (compiler/memo.ts; absent: none). */
  memo?: MemoPlan;
  /** The runtime support unit (runtime/gpu/support.cu): synthetic fills, the denoising loop's kernels and RGB8 (absent from artifacts before them). */
  support: { unit: string; fill: string; euler?: string; cfgEuler?: string; rgb8?: string } | null;
  weights: { file: string; bytes: number; sha256: string; parts?: WeightParts; tensors: WeightEntry[] } | { absent: string; tensors: WeightEntry[] };
}

export interface Artifact {
  dir: string;
  manifest: Manifest;
  /** Kernel units (cubin bytes) by unit name, hash-checked. */
  cubins: Map<string, Uint8Array>;
  /** weights.bin's path, or null for a structure-only artifact (synthetic weights only). */
  weightsFile: string | null;
  /** With OpenOptions.partsLater: weights.bin's part hashes, not checked yet (the caller checks them while it loads: weights-check.ts). */
  uncheckedParts?: WeightParts;
  /** Weight entries by value name; a quantized entry also under its scale's name. */
  weightByValue: Map<string, WeightEntry>;
}

export interface OpenOptions {
  /** The device's compute capability; null skips the check (e.g. inspecting on a machine without a GPU). */
  capability: [number, number] | null;
  /** The caller's inputs (name -> dtype and shape), checked against the graph's. */
  inputs?: Record<string, { dtype: string; shape: readonly number[] }>;
  /** Synthetic weights will replace the learned ones (a structure-only artifact needs this). */
  synthetic?: boolean;
  /**
   * Leave weights.bin's sha256 to the caller where the manifest has part hashes (`uncheckedParts`:
   * loadModel checks them on worker threads while it uploads the file, runtime/gpu/weights-check.ts);
   * its size and sections are checked here all the same.
   */
  partsLater?: boolean;
}

/** Parses "dtype[d0,d1,...]" (compiler/ir/graph.ts formatType). */
export function parseType(text: string, where: string): { dtype: DType; shape: number[] } {
  const m = /^([a-z0-9]+)\[([0-9,]*)\]$/.exec(text);
  if (!m) fail(where, 'a static tensor type like float32[1,256,128]', `'${text}'`);
  return { dtype: m[1] as DType, shape: m[2] ? m[2].split(',').map(Number) : [] };
}

export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
export const typeBytes = (t: { dtype: DType; shape: readonly number[] }) => bytesFor(t.dtype, numel(t.shape));
const describeInputs = (specs: { name: string; dtype: string; shape: readonly number[] }[]) =>
  specs.map((s) => `${s.name} ${s.dtype}[${s.shape.join(',')}]`).join(', ');


function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  if (!existsSync(dir)) fail(dir, 'a compiled artifact folder', 'no such folder');
  if (!existsSync(path)) fail(path, 'an artifact manifest (npx compile writes it)', 'no such file');
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    fail(path, 'an artifact manifest (JSON)', `unparsable JSON (${(e as Error).message}); truncated or edited?`);
  }
  if (m.format !== RUNTIME_FORMAT) fail(path, `artifact format ${RUNTIME_FORMAT} (this runtime; recompile with npx compile)`, `format ${m.format}`);
  for (const key of ['io', 'values', 'memory', 'files', 'kernels', 'launchPlan', 'weights'] as const) {
    if (m[key] === undefined) fail(path, `a manifest with '${key}'`, 'none');
  }
  return m;
}

/** Checks the target against the device. */
export function checkTarget(m: Manifest, capability: [number, number] | null, where: string): void {
  const need = TARGET_CAPABILITY[m.target];
  if (!need) fail(where, `a target this runtime knows (${Object.keys(TARGET_CAPABILITY).join(', ')})`, `'${m.target}'`);
  if (capability && (capability[0] !== need[0] || capability[1] !== need[1])) {
    const fits = Object.entries(TARGET_CAPABILITY).find(([, c]) => c[0] === capability[0] && c[1] === capability[1])?.[0];
    fail(where, `an artifact for this GPU (compute capability ${capability.join('.')}${fits ? `: compile with --target ${fits}` : ', which no target supports'})`,
      `a ${m.target} artifact (${m.arch}, runs on compute capability ${need.join('.')} only)`);
  }
}

function checkKernels(dir: string, m: Manifest, where: string): Map<string, Uint8Array> {
  const pending = m.launchPlan.filter((l): l is Extract<Launch, { kind: 'pending' }> => l.kind === 'pending');
  if (pending.length) {
    const counts = new Map<string, number>();
    for (const p of pending) counts.set(p.op, (counts.get(p.op) ?? 0) + 1);
    fail(where, 'a kernel for every launch', `${pending.length} launches without one: ${[...counts].map(([op, n]) => `${op} x${n}`).join(', ')} (first: node '${pending[0].node}')`);
  }
  const cubins = new Map<string, Uint8Array>();
  for (const [file, sha] of Object.entries(m.files)) {
    if (!file.startsWith('kernels/')) continue;
    const path = join(dir, file);
    if (!existsSync(path)) fail(path, 'a kernel file listed in the manifest', 'no such file');
    const bytes = readFileSync(path);
    const got = sha256(bytes);
    if (got !== sha) fail(path, `sha256 ${sha.slice(0, 16)}... (the manifest's)`, `${got.slice(0, 16)}...: the file was modified or truncated (${bytes.length} bytes)`);
    cubins.set(file.replace(/^kernels\//, '').replace(/\.cubin$/, ''), bytes);
  }
  const units = new Map(m.kernels.map((k) => [k.name, k.unit]));
  for (const l of m.launchPlan) {
    if (l.kind !== 'kernel') continue;
    for (const t of l.maps ?? []) checkTensorMap(m, l, t, where);
    const unit = units.get(l.kernel);
    if (!unit) fail(where, `a kernel '${l.kernel}' (launch '${l.node}') in the manifest's kernel list`, 'none');
    if (!cubins.has(unit)) fail(where, `kernels/${unit}.cubin for launch '${l.node}'`, cubins.size ? 'no such unit' : 'no kernel files: the artifact was compiled with --no-build');
  }
  return cubins;
}

/** The memo plan: launch indices in the plan, saved buffers inside the arena and between their writers, key inputs among the inputs. */
export function checkMemo(m: Manifest, where: string): void {
  const memo = m.memo;
  if (!memo) return;
  const n = m.launchPlan.length, launches = new Set(memo.launches);
  const bad = (what: string, got: string) => fail(where, `a memo plan with ${what}`, got);
  for (const i of memo.launches) if (!Number.isInteger(i) || i < 0 || i >= n) bad(`launch indices below ${n}`, String(i));
  for (const name of memo.inputs) if (!m.io.inputs.some((x) => x.name === name)) bad('key inputs among the graph inputs', `'${name}'`);
  for (const v of memo.values) {
    if (!(v.offset >= 0 && v.bytes > 0 && v.offset + v.bytes <= m.memory.arenaBytes)) bad(`saved buffers inside the ${m.memory.arenaBytes}-byte arena`, `'${v.value}' at ${v.offset} (${v.bytes} bytes)`);
    if (!launches.has(v.first) || !launches.has(v.last) || v.first > v.last) bad('saved buffers between memoized writers', `'${v.value}' from launch ${v.first} to ${v.last}`);
  }
}

/** A tensor-map parameter: over one of the launch's arguments, a matrix inside that value's bytes, boxes the copy engine takes. */
function checkTensorMap(m: Manifest, l: Extract<Launch, { kind: 'kernel' }>, t: TensorMapArg, where: string): void {
  const what = `tensor map of parameter ${t.param} of launch '${l.node}'`;
  // The runtime encodes a map where the parameter's index is a number: any other key would pass a pointer where the kernel reads 128 bytes.
  const a = Number.isInteger(t.param) ? l.args[t.param] : undefined;
  if (!a) fail(where, `${what} over one of its ${l.args.length} arguments (an index)`, `parameter ${JSON.stringify(t.param)}`);
  if (l.maps!.filter((x) => x.param === t.param).length > 1) fail(where, `${what}: one map a parameter`, `${l.maps!.filter((x) => x.param === t.param).length}`);
  // The map's element type against the value's: e4m3 codes are read as bytes.
  const element = { uint8: ['float8e4m3fn', 1], bfloat16: ['bfloat16', 2], float32: ['float32', 4] } as const;
  const known = element[t.dtype as keyof typeof element];
  if (!known) fail(where, `${what} of uint8, bfloat16 or float32`, String(t.dtype));
  const type = m.values[a.value] ? parseType(m.values[a.value], where) : undefined;
  if (type?.dtype !== known[0]) fail(where, `${what}: '${a.value}' of ${known[0]} (the map reads ${t.dtype})`, type?.dtype ?? 'no type');
  const size = known[1], bytes = typeBytes(type);
  const [bc, br] = t.box ?? [];
  if (!([t.rows, t.cols, t.rowBytes].every((x) => Number.isInteger(x)) && t.rows > 0 && t.cols > 0 && t.rowBytes >= t.cols * size && t.rowBytes % 16 === 0 && (t.rows - 1) * t.rowBytes + t.cols * size <= bytes)) {
    fail(where, `${what}: ${t.rows} rows of ${t.cols} ${t.dtype} inside '${a.value}' (${bytes} bytes), rows 16-byte aligned`, `row stride ${t.rowBytes}`);
  }
  // The copy engine's base address: 16-byte aligned (arena and weights are 256-byte aligned, a view may not be).
  const start = a.where === 'arena' ? a.offset : a.where === 'input' ? m.io.inputs.find((i) => i.name === a.value)?.offset : 0;
  if (start === undefined || start % 16 !== 0) fail(where, `${what}: '${a.value}' at a 16-byte aligned offset`, `offset ${start}`);
  // Box rows of 32, 64 or 128 bytes: the swizzle span the runtime encodes (runtime/gpu/cuda.ts encodeTensorMap).
  if (!(Number.isInteger(bc) && Number.isInteger(br) && br > 0 && br <= 256 && [32, 64, 128].includes(bc * size))) fail(where, `${what}: a box of 32, 64 or 128 bytes x at most 256 rows`, `[${t.box}]`);
}

function checkWeights(dir: string, m: Manifest, synthetic: boolean, partsLater: boolean): { path: string; parts?: WeightParts } | null {
  const w = m.weights;
  if ('absent' in w) {
    if (!synthetic) {
      const missing = w.tensors.filter((t) => !t.data).length;
      fail(join(dir, 'manifest.json'), 'weights (weights.bin) or --synthetic-weights SEED', `a structure-only artifact (${w.absent}); ${missing} tensors have no data`);
    }
    return null;
  }
  const path = join(dir, w.file);
  if (!existsSync(path)) fail(path, `the weights file (${w.bytes} bytes)`, 'no such file');
  const size = statSync(path).size;
  if (size !== w.bytes) fail(path, `${w.bytes} bytes (the manifest's)`, `${size} bytes${size < w.bytes ? ': truncated' : ''}`);
  for (const t of w.tensors) {
    for (const [name, s] of Object.entries(t.sections)) {
      if (s.offset < 0 || s.offset + s.length > w.bytes) fail(path, `section '${name}' of weight '${t.name}' inside the file`, `[${s.offset}, ${s.offset + s.length}) of ${w.bytes} bytes`);
    }
    if (t.kind === 'raw' && t.sections.data && t.sections.data.length !== bytesFor(t.dtype as DType, numel(t.shape))) {
      fail(path, `${bytesFor(t.dtype as DType, numel(t.shape))} bytes for weight '${t.name}' (${t.dtype}[${t.shape}])`, `${t.sections.data.length}`);
    }
  }
  if (w.parts) {
    const count = Math.ceil(w.bytes / w.parts.bytes);
    if (!(Number.isSafeInteger(w.parts.bytes) && w.parts.bytes > 0 && w.parts.bytes % (8 << 20) === 0) || w.parts.sha256.length !== count) {
      fail(join(dir, 'manifest.json'), `weights.parts: ${count} hashes of parts of a multiple of 8 MiB`, `${w.parts.sha256.length} of ${w.parts.bytes} bytes`);
    }
    if (partsLater) return { path, parts: w.parts };
  }
  const got = sha256File(path);
  if (got !== w.sha256) fail(path, `sha256 ${w.sha256.slice(0, 16)}... (the manifest's)`, `${got.slice(0, 16)}...: the file was modified`);
  return { path };
}

function checkArgs(m: Manifest, weightByValue: Map<string, WeightEntry>, where: string): void {
  const inputs = new Set(m.io.inputs.map((i) => i.name));
  for (const l of m.launchPlan) {
    for (const a of l.args) {
      const type = m.values[a.value];
      if (!type) fail(where, `a type for value '${a.value}' of launch '${l.node}'`, 'none');
      if (a.where === 'arena') {
        const bytes = typeBytes(parseType(type, where));
        if (a.offset === undefined || a.offset < 0 || a.offset + bytes > m.memory.arenaBytes) {
          fail(where, `value '${a.value}' of launch '${l.node}' inside the arena (${m.memory.arenaBytes} bytes)`, `offset ${a.offset}, ${bytes} bytes`);
        }
      } else if (a.where === 'weight') {
        if (!weightByValue.has(a.value)) fail(where, `weight '${a.value}' of launch '${l.node}' in the weight index`, 'none');
      } else if (!inputs.has(a.value)) {
        fail(where, `'${a.value}' of launch '${l.node}' among the graph inputs`, describeInputs(m.io.inputs));
      }
    }
  }
}

/** The caller's inputs against the graph's: same names, dtypes and shapes (float32 may feed bfloat16/float16). */
export function checkInputs(m: Manifest, given: Record<string, { dtype: string; shape: readonly number[] }>): void {
  const where = `inputs for artifact '${m.model}'`;
  const expected = describeInputs(m.io.inputs);
  const found = describeInputs(Object.entries(given).map(([name, t]) => ({ name, ...t })));
  const names = new Set(m.io.inputs.map((i) => i.name));
  const unknown = Object.keys(given).filter((n) => !names.has(n));
  const missing = m.io.inputs.filter((i) => !(i.name in given)).map((i) => i.name);
  if (unknown.length || missing.length) {
    fail(where, expected, `${found}: an artifact of another model for the given inputs (${[missing.length ? `missing ${missing.join(', ')}` : '', unknown.length ? `unknown ${unknown.join(', ')}` : ''].filter(Boolean).join('; ')})`);
  }
  for (const i of m.io.inputs) {
    const g = given[i.name];
    const dtypeOk = g.dtype === i.dtype || (g.dtype === 'float32' && (i.dtype === 'bfloat16' || i.dtype === 'float16'));
    if (!dtypeOk || g.shape.length !== i.shape.length || g.shape.some((d, k) => d !== i.shape[k])) {
      fail(where, expected, `${found}: input '${i.name}' is ${g.dtype}[${g.shape.join(',')}], not ${i.dtype}[${i.shape.join(',')}] (an artifact of another model or shape for the given inputs)`);
    }
  }
}

export function openArtifact(dir: string, options: OpenOptions): Artifact {
  const m = readManifest(dir);
  const where = join(dir, 'manifest.json');
  checkTarget(m, options.capability, where);
  const cubins = checkKernels(dir, m, where);
  checkMemo(m, where);
  const weights = checkWeights(dir, m, !!options.synthetic, !!options.partsLater);
  const weightByValue = new Map<string, WeightEntry>();
  for (const t of m.weights.tensors) {
    weightByValue.set(t.name, t);
    if (t.scale) weightByValue.set(t.scale, t);
  }
  checkArgs(m, weightByValue, where);
  if (options.inputs) checkInputs(m, options.inputs);
  return { dir, manifest: m, cubins, weightsFile: weights?.path ?? null, ...(weights?.parts ? { uncheckedParts: weights.parts } : {}), weightByValue };
}
