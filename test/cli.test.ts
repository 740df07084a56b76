/**
 * The `npx compile` command as a user meets it: the --json contract on the bundled model, and each
 * kind of bad input giving one line that names the file/node/flag, a non-zero exit, no stack
 * trace, and no partial artifact (a previous good artifact at --out survives untouched).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../compiler/compile.ts';
import { tinyDir } from './helpers/fixtures.ts';

const BIN = join(ROOT, 'bin', 'compile.mjs');
const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT, env: { ...process.env, ...env } });
const tmp = mkdtempSync(join(tmpdir(), 'compile-cli-'));
const flux2 = join(tinyDir('flux2'), 'model.onnx');

describe('npx compile', () => {
  it('compiles the bundled model with no arguments', () => {
    const out = execFileSync(process.execPath, [BIN, '--out', join(tmp, 'default'), '--json'], { encoding: 'utf8', cwd: ROOT });
    const summary = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(summary.model).toBe('flux2');
    expect(existsSync(join(tmp, 'default', 'manifest.json'))).toBe(true);
  });

  it('--json: the last stdout line holds the contract keys, with verify results', () => {
    const r = run([flux2, '--target', 'b200', '--precision', 'fp32', '--verify', tinyDir('flux2'), '--out', join(tmp, 'json'), '--json']);
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    for (const key of ['artifact', 'model', 'target', 'precision', 'nodes', 'launches', 'fusedAttention', 'memory', 'flops', 'verify', 'build', 'seconds']) {
      expect(s, key).toHaveProperty(key);
    }
    expect(s.target).toBe('b200');
    expect(s.nodes.input).toBe(702);
    expect(s.verify.relL2).toBeLessThanOrEqual(1e-5);
    expect(s.verify.passed).toBe(true);
    expect(s.flops).toBeGreaterThan(0);
    expect(s.build.kernels).toBeGreaterThan(10);
    expect(s.build.spills).toBe(0);
    expect(existsSync(join(s.artifact, 'kernels', 'kernels_hot.cubin'))).toBe(true);
    const report = readFileSync(join(s.artifact, 'report.md'), 'utf8');
    expect(report).toContain('| fold-constants |');
    expect(report).toContain('| MatMul | 47 |');
  });

  it('bundled:NAME compiles one of the full-size exports in models/full (here the Flux.2 VAE decoder, structure only)', () => {
    const r = run(['bundled:flux2_vae_decoder', '--no-build', '--out', join(tmp, 'bundled'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(s.model).toBe('flux2_vae_decoder');
    expect(JSON.parse(readFileSync(join(s.artifact, 'manifest.json'), 'utf8')).weights.absent).toMatch(/structure only/);
  });
});

describe('bad input', () => {
  const good = join(tmp, 'kept');
  beforeAll(() => {
    expect(run([flux2, '--out', good]).status).toBe(0);
  });

  function expectCleanFailure(args: string[], mentions: RegExp[], env: Record<string, string> = {}) {
    const before = readFileSync(join(good, 'manifest.json'), 'utf8');
    const r = run([...args, '--out', good], { DC_KERNEL_CACHE: join(tmp, 'empty-cache'), ...env });
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    for (const m of mentions) expect(lines[0]).toMatch(m);
    expect(readFileSync(join(good, 'manifest.json'), 'utf8')).toBe(before);
    expect(readdirSync(tmp).filter((f) => f.includes('partial'))).toEqual([]);
  }

  it('--dump-after writes each pass\'s graph beside the artifact (ARTIFACT.dumps), which survives the artifact\'s atomic write', () => {
    const out = join(tmp, 'dumped');
    const r = run([flux2, '--no-build', '--out', out, '--dump-after', 'fuse-attention']);
    expect(r.status).toBe(0);
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);
    const dumps = readdirSync(`${out}.dumps`);
    expect(dumps).toContain('after-fuse-attention-round1.txt');
    expect(readFileSync(join(`${out}.dumps`, 'after-fuse-attention-round1.txt'), 'utf8')).toContain('FusedAttention');
  });

  it('a truncated ONNX file', () => {
    const file = join(tmp, 'truncated.onnx');
    writeFileSync(file, readFileSync(flux2).subarray(0, 5000));
    expectCleanFailure([file], [/truncated\.onnx/, /ONNX/]);
  });

  it('a file that is not ONNX', () => {
    const file = join(tmp, 'notes.onnx');
    writeFileSync(file, 'this is a text file, not a model\n'.repeat(20));
    expectCleanFailure([file], [/notes\.onnx/]);
  });

  it('an operator the compiler does not know', () => {
    const { onnx } = onnxProto;
    const model = onnx.ModelProto.decode(readFileSync(flux2));
    model.graph!.node![5].opType = 'FancyOp';
    const dir = mkdtempSync(join(tmp, 'unknown-op-'));
    writeFileSync(join(dir, 'model.onnx'), onnx.ModelProto.encode(model).finish());
    symlinkSync(join(tinyDir('flux2'), 'model.onnx.data'), join(dir, 'model.onnx.data'));
    expectCleanFailure([join(dir, 'model.onnx')], [/FancyOp/, /node/]);
  });

  it('a missing external-data file when weights are needed', () => {
    const dir = mkdtempSync(join(tmp, 'no-data-'));
    copyFileSync(flux2, join(dir, 'model.onnx'));
    expectCleanFailure([join(dir, 'model.onnx'), '--verify', tinyDir('flux2')], [/model\.onnx\.data/, /no such file/]);
  });

  it('--shape naming a dim the model does not have', () => {
    expectCleanFailure([flux2, '--shape', 'img_tokens=4096'], [/--shape/, /img_tokens/]);
  });

  it('--shape contradicting a static dim', () => {
    expectCleanFailure([flux2, '--shape', 'hidden_states.1=1024'], [/--shape/, /hidden_states\.1=256/, /1024/]);
  });

  it('a verify folder lacking an input', () => {
    const dir = mkdtempSync(join(tmp, 'verify-'));
    for (const f of readdirSync(tinyDir('flux2'))) if (f.endsWith('.npy') && f !== 'input_guidance.npy') copyFileSync(join(tinyDir('flux2'), f), join(dir, f));
    expectCleanFailure([flux2, '--verify', dir], [/input_guidance\.npy/, /guidance/]);
  });

  it('bundled: with a name that is not bundled', () => {
    expectCleanFailure(['bundled:flux3'], [/bundled:flux3/, /flux2_dev, qwen_image/, /'flux3'/]);
  });

  it('an unknown --target', () => {
    expectCleanFailure([flux2, '--target', 'a100'], [/--target/, /h100/, /a100/]);
  });

  it('nvcc missing when kernels must be built', () => {
    expectCleanFailure([flux2], [/nvcc/, /\/nonexistent\/nvcc/], { NVCC: '/nonexistent/nvcc' });
  });

  it('an unknown flag', () => {
    expectCleanFailure([flux2, '--optimise-harder'], [/optimise-harder/]);
  });
});
