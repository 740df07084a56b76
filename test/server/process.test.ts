/**
 * The README's first commands as a user runs them, in a fresh working directory: `npx compile` (no
 * argument) builds the tiny Flux.2 pipeline artifact and prints its path as `artifact`; `npx serve`
 * (no argument) serves that artifact, logs that it picked the CPU executor and why, generates an
 * image for the unchanged openai client, and on SIGTERM finishes the running and queued requests
 * (200), refuses new ones (503) and exits 0. Also: a damaged artifact (one flipped byte) and a
 * single-module folder are refused with one line; usage errors exit 2 naming the flag; an
 * unloadable manifest and an impossible --executor gpu exit 1.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACT_FORMAT } from '../../compiler/compile.ts';
import { ROOT } from '../../runtime/paths.ts';
import { SERVE_BIN, type ServeProcess, metric, post, spawnServe, waitFor, waitUntil } from './helpers.ts';

const COMPILE_BIN = join(ROOT, 'bin', 'compile.mjs');
const cwd = mkdtempSync(join(tmpdir(), 'readme-'));
const hasGpu = existsSync('/proc/driver/nvidia/version');
let artifact: string;
let server: ServeProcess;

beforeAll(async () => {
  const out = execFileSync(process.execPath, [COMPILE_BIN, '--json'], { cwd, encoding: 'utf8' });
  artifact = JSON.parse(out.trim().split('\n').at(-1)!).artifact;
  server = spawnServe(['--port', '0'], cwd);
  await server.ready();
}, 300_000);
afterAll(async () => { await server?.stop(); });

const serveSync = (args: string[]) => spawnSync(process.execPath, [SERVE_BIN, ...args], { cwd, encoding: 'utf8' });

describe('npx compile && npx serve (no arguments)', () => {
  it('compile writes the pipeline artifact under ./artifacts: manifest, three compiled modules, the graphs, the tokenizer', () => {
    expect(artifact).toBe(join(cwd, 'artifacts', 'flux2-tiny-h100-fp8'));
    const m = JSON.parse(readFileSync(join(artifact, 'manifest.json'), 'utf8'));
    expect(m).toMatchObject({ format: 'pipeline/1', family: 'flux2', name: 'flux2-tiny', sizes: ['64x64'], compiled: { target: 'h100', precision: 'fp8' } });
    for (const dir of ['text_encoder', 'transformer', 'vae_decoder']) {
      expect(JSON.parse(readFileSync(join(artifact, dir, 'manifest.json'), 'utf8')).format).toBe(ARTIFACT_FORMAT);
      expect(existsSync(join(artifact, 'onnx', dir, 'model.onnx'))).toBe(true);
    }
    expect(existsSync(join(artifact, 'tokenizer', 'tokenizer.json'))).toBe(true);
  });

  it('serve picks that artifact and the CPU executor by itself, and says so', () => {
    expect(server.lines.some((l) => l.msg === `serving the artifact \`npx compile\` built: ${artifact}`)).toBe(true);
    const choice = server.lines.find((l) => l.executor !== undefined);
    expect(choice?.executor).toBe('cpu');
    expect(choice?.msg).toMatch(hasGpu ? /GPU.*: using the CPU executor \(onnxruntime-node\)/ : /^no GPU found .*: using the CPU executor \(onnxruntime-node\)$/);
    expect(choice?.graphs.every((g: string) => g.startsWith(`cpu (onnxruntime-node) ${join(artifact, 'onnx')}`))).toBe(true);
    // The start's time in the log: the load, then the warm-up, within the whole.
    const loaded = server.lines.find((l) => l.msg === 'pipeline loaded')!, ready = server.lines.find((l) => l.msg === 'ready')!;
    expect(loaded.loadSeconds).toBeGreaterThan(0);
    expect(ready.warmUpSeconds).toBeGreaterThan(0);
    expect(ready.startSeconds).toBeGreaterThanOrEqual(loaded.loadSeconds + ready.warmUpSeconds - 0.002);
  });

  it('the openai client generates an image from it', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const res = await client.images.generate({ model: 'flux2-tiny', prompt: 'a red fox', size: '64x64' as '1024x1024', seed: 42, num_inference_steps: 2 } as OpenAI.Images.ImageGenerateParamsNonStreaming);
    expect(await sharp(Buffer.from(res.data![0].b64_json!, 'base64')).metadata()).toMatchObject({ format: 'png', width: 64, height: 64 });
  });

  it('SIGTERM: the running and the queued requests finish with 200, new ones get 503, exit 0', async () => {
    const running = post(server.url, { prompt: 'a red fox', seed: 2, num_inference_steps: 40 });
    await waitFor(() => server.lines.some((l) => l.msg === 'denoising step' && l.total === 40), 'the long request to start', 30_000);
    const queued = [post(server.url, { prompt: 'b', seed: 3, num_inference_steps: 2 }), post(server.url, { prompt: 'c', seed: 4, num_inference_steps: 2 })];
    await waitUntil(async () => (await metric(server.url, 'dc_queue_depth')) === 2, 'both requests to queue');
    server.proc.kill('SIGTERM');
    await waitFor(() => server.lines.some((l) => l.msg === 'draining'), 'the drain to begin', 10_000);
    expect(server.lines.find((l) => l.msg === 'draining')).toMatchObject({ queued: 2, running: true });
    const refused = await post(server.url, { prompt: 'late', num_inference_steps: 1 });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe('draining');
    expect((await running).status).toBe(200);
    for (const q of await Promise.all(queued)) expect(q.status).toBe(200);
    expect(await server.exited).toBe(0);
    expect(server.lines.at(-1)?.msg).toBe('drained; exiting');
  });
});

describe('bad artifacts and arguments', () => {
  it('a flipped byte in a copied graph: exit 1, one line naming the file and its hash', () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'bad-artifact-')), 'a');
    cpSync(artifact, bad, { recursive: true });
    const data = join(bad, 'onnx', 'transformer', 'model.onnx.data');
    const bytes = readFileSync(data);
    bytes[1000] ^= 0x40;
    writeFileSync(data, bytes);
    const r = serveSync([bad]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`serve: ${join(bad, 'manifest.json')}: 'onnx/transformer/model.onnx.data' does not match its sha256 in the manifest (the artifact is damaged; compile it again)`]);
  });

  it('one compiled module is not a pipeline: exit 1 saying how to build one', () => {
    const r = serveSync([join(artifact, 'transformer')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/found the compiled module 'flux2' \(one graph\); build the whole pipeline with `npx compile`/);
  });

  it('--executor gpu where it cannot run (no GPU, or a description without compiled modules): exit 1', () => {
    const r = serveSync([join(ROOT, 'models', 'flux2', 'tiny.pipeline.json'), '--executor', 'gpu']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(hasGpu ? /^serve: --executor gpu: a GPU is present, but .* has no compiled modules/ : /^serve: --executor gpu: no GPU found/);
  });

  it('--synthetic-weights where only the CPU executor can run: exit 1 saying synthetic weights need the GPU', () => {
    const r = serveSync([join(ROOT, 'models', 'flux2', 'tiny.pipeline.json'), '--synthetic-weights', '42']);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(hasGpu ? /^serve: --synthetic-weights \(GPU only\): a GPU is present, but .* has no compiled modules/ : /^serve: --synthetic-weights \(GPU only\): no GPU found/);
    const cpu = serveSync(['--executor', 'cpu', '--synthetic-weights', '42']);
    expect(cpu.status).toBe(1);
    expect(cpu.stderr.trim()).toBe("serve: --synthetic-weights: the CPU executor runs the graphs' own weights; synthetic weights need the GPU executor");
  });

  it('bad flags exit 2 naming the flag; a missing manifest exits 1 naming the file, no stack trace', () => {
    const flag = serveSync(['--port', 'abc']);
    expect(flag.status).toBe(2);
    expect(flag.stderr.trim()).toBe('serve: --port: expected an integer in [0, 65535], found abc');
    const unknown = serveSync(['--gpu']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown flag --gpu');
    const seed = serveSync(['--synthetic-weights', 'x']);
    expect(seed.status).toBe(2);
    expect(seed.stderr.trim()).toBe('serve: --synthetic-weights: expected an integer in [0, 4294967295], found x');
    const executor = serveSync(['--executor', 'tpu']);
    expect(executor.status).toBe(2);
    expect(executor.stderr.trim()).toBe('serve: --executor: expected one of auto, cpu, gpu, found tpu');
    const missing = serveSync([join(ROOT, 'no-such-artifact')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no-such-artifact: expected a pipeline manifest/);
    expect(missing.stderr).not.toMatch(/\n\s+at /);
  });
});
