/**
 * The runtime's artifact checks (runtime/gpu/artifact.ts), on the CPU: a good artifact is accepted,
 * and each kind of bad artifact gets its own one-line error before anything would touch a GPU —
 * a flipped byte in a kernel or in weights.bin (or in one of its parts, checked by weights-check.ts
 * where the caller asks: partsLater), truncated files, a b200 artifact on an H100
 * (capability injected), launches without a kernel, an artifact built with --no-build, and inputs
 * of another model. The CLI turns each into exit code 1 with one line.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACT_FORMAT, ROOT, compileModel } from '../../compiler/compile.ts';
import { CompileError } from '../../compiler/errors.ts';
import { openArtifact } from '../../runtime/gpu/artifact.ts';
import { checkWeightParts } from '../../runtime/gpu/weights-check.ts';
import { fixtureInputs } from '../helpers/fixtures.ts';
import { MLP, writeMlp } from './mlp.ts';

const tmp = mkdtempSync(join(tmpdir(), 'rt-artifact-'));
const good = join(tmp, 'mlp-h100');
const H100: [number, number] = [9, 0];
const mlpInputs = { x: { dtype: 'float32', shape: [MLP.tokens, MLP.width] } };
let model = '';

/** A copy of the good artifact, changed by `edit`. */
function variant(name: string, edit: (dir: string) => void): string {
  const dir = join(tmp, name);
  cpSync(good, dir, { recursive: true });
  edit(dir);
  return dir;
}

function flipByte(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] ^= 0x01;
  writeFileSync(file, b);
}

/** The CompileError message openArtifact throws (fails the test when it does not throw). */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CompileError);
    const message = (e as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    return message;
  }
  throw new Error('expected an error');
}

const editManifest = (dir: string, edit: (m: Record<string, unknown>) => void) => {
  const path = join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8'));
  edit(m);
  writeFileSync(path, JSON.stringify(m));
};

beforeAll(async () => {
  model = await writeMlp(join(tmp, 'src'));
  await compileModel({ model, target: 'h100', precision: 'fp8', out: good });
}, 120_000);

describe('artifact checks', () => {
  it('accepts the good artifact, with every launch argument resolved', () => {
    const a = openArtifact(good, { capability: H100, inputs: mlpInputs });
    expect(a.manifest.launchPlan.map((l) => l.kind)).toEqual(['kernel', 'gemm', 'kernel', 'gemm', 'kernel']);
    expect([...a.cubins.keys()].sort()).toEqual(['kernels_hot', 'runtime_support']);
    expect(a.weightsFile).toBe(join(good, 'weights.bin'));
    // Quantized weights are found under their codes and their scales' names, stored [N, K].
    expect(a.weightByValue.get('ab/ws')?.name).toBe('ab/wq');
    expect(a.weightByValue.get('ab/wq')?.shape).toEqual([MLP.hidden, MLP.width]);
    expect(a.manifest.io.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [MLP.tokens, MLP.width], offset: expect.any(Number), bytes: MLP.tokens * MLP.width * 4 }]);
  });

  it('rejects a flipped byte in a kernel file', () => {
    const dir = variant('flip-kernel', (d) => flipByte(join(d, 'kernels', 'kernels_hot.cubin'), 1000));
    expect(errorOf(() => openArtifact(dir, { capability: H100 }))).toMatch(/kernels\/kernels_hot\.cubin: expected sha256 [0-9a-f]{16}\.\.\. \(the manifest's\), found [0-9a-f]{16}\.\.\.: the file was modified/);
  });

  it('rejects a flipped byte in weights.bin', () => {
    const dir = variant('flip-weights', (d) => flipByte(join(d, 'weights.bin'), 5000));
    expect(errorOf(() => openArtifact(dir, { capability: H100 }))).toMatch(/weights\.bin: expected sha256 .*found .*the file was modified/);
  });

  it('with partsLater, leaves weights.bin\'s hash to the caller\'s part check (weights-check.ts), which finds the flipped byte', () => {
    const a = openArtifact(good, { capability: H100, partsLater: true });
    const w = a.manifest.weights as { bytes: number; sha256: string; parts?: { bytes: number; sha256: string[] } };
    expect(w.parts).toEqual({ bytes: 256 << 20, sha256: [w.sha256] }); // a file under 256 MiB: one part, the file's own hash
    expect(a.uncheckedParts).toBe(w.parts);
    const dir = variant('flip-weights-later', (d) => flipByte(join(d, 'weights.bin'), 5000));
    const later = openArtifact(dir, { capability: H100, partsLater: true });
    expect(errorOf(() => checkWeightParts(later.weightsFile!, later.uncheckedParts!, w.bytes).join()))
      .toMatch(new RegExp(`weights\\.bin: expected sha256 ${w.sha256.slice(0, 16)}\\.\\.\\. for bytes \\[0, ${w.bytes}\\) \\(the manifest's weights\\.parts\\[0\\]\\), found [0-9a-f]{16}\\.\\.\\.: the file was modified`));
    // Without part hashes (an artifact from before them) the whole file is hashed here, as before.
    const old = variant('flip-weights-no-parts', (d) => { flipByte(join(d, 'weights.bin'), 5000); editManifest(d, (m) => { delete (m.weights as Record<string, unknown>).parts; }); });
    expect(errorOf(() => openArtifact(old, { capability: H100, partsLater: true }))).toMatch(/weights\.bin: expected sha256 .*found .*the file was modified/);
    const miscounted = variant('parts-miscounted', (d) => editManifest(d, (m) => { (m.weights as { parts: { sha256: string[] } }).parts.sha256.push('00'); }));
    expect(errorOf(() => openArtifact(miscounted, { capability: H100, partsLater: true }))).toMatch(/manifest\.json: expected weights\.parts: 1 hashes of parts of a multiple of 8 MiB, found 2 of 268435456 bytes/);
    const odd = variant('parts-odd-size', (d) => editManifest(d, (m) => { (m.weights as { parts: { bytes: number } }).parts.bytes = 1000; }));
    expect(errorOf(() => openArtifact(odd, { capability: H100, partsLater: true }))).toMatch(/expected weights\.parts: \d+ hashes of parts of a multiple of 8 MiB, found 1 of 1000 bytes/);
  });

  it('rejects truncated files: weights.bin, a kernel, the manifest', () => {
    const size = readFileSync(join(good, 'weights.bin')).length;
    const w = variant('trunc-weights', (d) => truncateSync(join(d, 'weights.bin'), size - 100));
    expect(errorOf(() => openArtifact(w, { capability: H100 }))).toMatch(new RegExp(`weights\\.bin: expected ${size} bytes \\(the manifest's\\), found ${size - 100} bytes: truncated`));
    const k = variant('trunc-kernel', (d) => truncateSync(join(d, 'kernels', 'runtime_support.cubin'), 64));
    expect(errorOf(() => openArtifact(k, { capability: H100 }))).toMatch(/runtime_support\.cubin: expected sha256 .*\(64 bytes\)/);
    const m = variant('trunc-manifest', (d) => truncateSync(join(d, 'manifest.json'), 500));
    expect(errorOf(() => openArtifact(m, { capability: H100 }))).toMatch(/manifest\.json: expected an artifact manifest \(JSON\), found unparsable JSON/);
  });

  it('rejects a b200 artifact on an H100 (and an h100 one on a B200)', async () => {
    const b200 = join(tmp, 'mlp-b200');
    await compileModel({ model, target: 'b200', precision: 'fp8', out: b200 });
    expect(errorOf(() => openArtifact(b200, { capability: H100 }))).toMatch(
      /expected an artifact for this GPU \(compute capability 9\.0: compile with --target h100\), found a b200 artifact \(sm_100a, runs on compute capability 10\.0 only\)/);
    expect(errorOf(() => openArtifact(good, { capability: [10, 0] }))).toMatch(/--target b200\), found a h100 artifact \(sm_90a/);
    expect(errorOf(() => openArtifact(good, { capability: [8, 0] }))).toMatch(/compute capability 8\.0, which no target supports/);
  }, 60_000);

  it('rejects inputs of another model', () => {
    const flux = Object.fromEntries(Object.entries(fixtureInputs('flux2')).map(([k, t]) => [k, { dtype: t.dtype, shape: t.shape }]));
    expect(errorOf(() => openArtifact(good, { capability: H100, inputs: flux }))).toMatch(
      /inputs for artifact 'src': expected x float32\[64,256\], found .*hidden_states float32\[1,256,128\].*an artifact of another model for the given inputs \(missing x; unknown .*hidden_states/);
    expect(errorOf(() => openArtifact(good, { capability: H100, inputs: { x: { dtype: 'float32', shape: [32, 256] } } }))).toMatch(/input 'x' is float32\[32,256\], not float32\[64,256\]/);
    expect(errorOf(() => openArtifact(good, { capability: H100, inputs: { x: { dtype: 'int64', shape: [64, 256] } } }))).toMatch(/input 'x' is int64/);
  });

  it('rejects launches without a kernel, naming the ops', () => {
    const dir = variant('pending', (d) => editManifest(d, (m) => {
      const plan = m.launchPlan as { kind: string; node: string; op?: string }[];
      plan[1] = { ...plan[1], kind: 'pending', op: 'dc.FusedAttention' };
      plan[3] = { ...plan[3], kind: 'pending', op: 'dc.FusedAttention' };
    }));
    expect(errorOf(() => openArtifact(dir, { capability: H100 }))).toMatch(/expected a kernel for every launch, found 2 launches without one: dc\.FusedAttention x2 \(first: node 'ab'\)/);
  });

  it('rejects an artifact without kernels (--no-build), another format, and an arena argument outside the arena', async () => {
    const nobuild = join(tmp, 'nobuild');
    await compileModel({ model, target: 'h100', precision: 'fp8', out: nobuild, build: false });
    expect(errorOf(() => openArtifact(nobuild, { capability: H100 }))).toMatch(/no kernel files: the artifact was compiled with --no-build/);
    const old = variant('format1', (d) => editManifest(d, (m) => { m.format = 1; }));
    // The runtime asks for the format the compiler writes.
    expect(errorOf(() => openArtifact(old, { capability: H100 }))).toMatch(new RegExp(`expected artifact format ${ARTIFACT_FORMAT} \\(this runtime; recompile with npx compile\\), found format 1`));
    const outside = variant('outside', (d) => editManifest(d, (m) => {
      ((m.launchPlan as { args: { offset?: number }[] }[])[0].args.at(-1)!).offset = (m.memory as { arenaBytes: number }).arenaBytes;
    }));
    expect(errorOf(() => openArtifact(outside, { capability: H100 }))).toMatch(/inside the arena/);
  }, 60_000);

  it('the CLI checks without a GPU: exit 0 for the good artifact, 1 with one line for a bad one', () => {
    const cli = join(ROOT, 'runtime', 'gpu', 'run-cli.ts');
    const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8' });
    const ok = run(good, '--check', '--capability', '9.0');
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/checks passed/);
    expect(ok.status).toBe(0);
    const bad = run(join(tmp, 'flip-weights'), '--check', '--capability', '9.0');
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^error: .*weights\.bin: expected sha256/);
    const other = run(good, '--check', '--capability', '9.0', '--inputs', join(ROOT, 'models', 'tiny', 'flux2'));
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/an artifact of another model for the given inputs/);
  }, 60_000);
});
