/**
 * The curl and openai-client calls shown in README.md's `npx serve` section, run as written against
 * `npx serve` (no argument, a fresh directory: the bundled tiny Flux.2), with only the address
 * changed to the port the server picked. Each must leave the image it promises: fox.png / fox.webp
 * at 64x64.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../runtime/paths.ts';
import { type ServeProcess, spawnServe } from './helpers.ts';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## `npx serve`'), readme.indexOf('\n## ', readme.indexOf('## `npx serve`') + 1));
const block = (lang: string, mark: string) => {
  const found = [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]).find((b) => b.includes(mark));
  if (!found) throw new Error(`README.md's npx serve section has no ${lang} block with ${mark}`);
  return found;
};
const hasCurl = spawnSync('curl', ['--version']).status === 0;
mkdirSync(join(ROOT, '.cache'), { recursive: true });
const work = mkdtempSync(join(ROOT, '.cache', 'readme-')); // inside the project, so `openai` resolves
let server: ServeProcess;
beforeAll(async () => {
  server = spawnServe(['--port', '0']);
  await server.ready();
}, 60_000);
afterAll(async () => { await server.stop(); rmSync(work, { recursive: true, force: true }); });

const local = (code: string) => code.replaceAll('http://127.0.0.1:8000', server.url);

describe('README.md npx serve examples', () => {
  it.skipIf(!hasCurl)('the curl call writes fox.png (skipped only where curl is not installed)', async () => {
    execFileSync('bash', ['-c', local(block('sh', 'curl'))], { cwd: work });
    expect(await sharp(join(work, 'fox.png')).metadata()).toMatchObject({ format: 'png', width: 64, height: 64 });
  });

  it('the openai-client call writes fox.webp', async () => {
    writeFileSync(join(work, 'example.mjs'), local(block('js', "from 'openai'")));
    execFileSync(process.execPath, ['example.mjs'], { cwd: work });
    expect(await sharp(join(work, 'fox.webp')).metadata()).toMatchObject({ format: 'webp', width: 64, height: 64 });
  });
});
