/**
 * The real `serve` process (bin/serve.mjs, no ARTIFACT -> the bundled tiny Flux.2 pipeline):
 * it logs that it uses the CPU executor, listens on the port it names, serves an image, and on
 * SIGTERM finishes the request in flight (200), refuses new ones (503) and exits 0. Also the
 * usage errors (exit 2, one line naming the flag) and an unloadable manifest (exit 1).
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT } from '../../runtime/paths.ts';
import { post, waitFor } from './helpers.ts';

const BIN = join(ROOT, 'bin', 'serve.mjs');
let child: ChildProcessWithoutNullStreams | undefined;
afterEach(() => { if (child && child.exitCode === null) child.kill('SIGKILL'); child = undefined; });

function serve(args: string[]) {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT });
  const lines: Record<string, any>[] = [];
  let buf = '';
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { lines.push(JSON.parse(line)); } catch { lines.push({ msg: line }); }
    }
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, lines, exited, stderr: () => stderr };
}

describe('npx serve (process)', () => {
  it('serves the tiny Flux.2 pipeline on the CPU executor and drains on SIGTERM', async () => {
    const s = serve(['--port', '0']);
    child = s.proc;
    await waitFor(() => s.lines.some((l) => l.msg === 'ready') || s.proc.exitCode !== null, 'the server to be ready', 30_000);
    const cpu = s.lines.find((l) => l.executor === 'cpu');
    expect(cpu?.msg).toMatch(/using the CPU executor \(onnxruntime-node\)/);
    const url: string = s.lines.find((l) => l.msg === 'listening')!.address;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const first = await post(url, { prompt: 'a red fox', seed: 1, num_inference_steps: 2 });
    expect(first.status).toBe(200);
    expect(await sharp(Buffer.from(first.json.data[0].b64_json, 'base64')).metadata()).toMatchObject({ format: 'png', width: 64, height: 64 });

    // A long request; SIGTERM once its first step is logged.
    const long = post(url, { prompt: 'a red fox', seed: 2, num_inference_steps: 40 });
    await waitFor(() => s.lines.some((l) => l.msg === 'denoising step' && l.step === 1 && l.total === 40), 'the long request to start', 30_000);
    s.proc.kill('SIGTERM');
    await waitFor(() => s.lines.some((l) => l.msg === 'draining'), 'the drain to begin', 10_000);
    const refused = await post(url, { prompt: 'late', num_inference_steps: 1 });
    expect(refused.status).toBe(503);
    expect((await long).status).toBe(200);
    expect(await s.exited).toBe(0);
    expect(s.lines.some((l) => l.msg === 'drained; exiting')).toBe(true);
  });

  it('bad flags exit 2 naming the flag; a bad manifest exits 1 naming the file', () => {
    const flag = spawnSync(process.execPath, [BIN, '--port', 'abc'], { cwd: ROOT, encoding: 'utf8' });
    expect(flag.status).toBe(2);
    expect(flag.stderr.trim()).toBe('serve: --port: expected an integer in [0, 65535], found abc');
    const unknown = spawnSync(process.execPath, [BIN, '--gpu'], { cwd: ROOT, encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown flag --gpu');
    const missing = spawnSync(process.execPath, [BIN, join(ROOT, 'no-such-artifact')], { cwd: ROOT, encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no-such-artifact: expected a pipeline manifest/);
    expect(missing.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
