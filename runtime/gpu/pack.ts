/**
 * pack: everything the GPU host needs to run an artifact, in one folder (default .gpu/rt), since
 * that host has no Node.js.
 *
 *   run-cli.mjs                   runtime/gpu/run-cli.ts and everything it imports (koffi's JS too),
 *                                 one ESM file bundled by esbuild
 *   node_modules/@koromix/koffi-linux-x64/   koffi's native module for linux x64 (the bundle's
 *                                 createRequire finds it there)
 *   node.xz                       this machine's Node binary, xz-compressed (about 24 MB; rebuilt
 *                                 only when the Node version changes: node.version)
 *   run.sh                        unpacks Node once per machine (/tmp/dc-node) and runs the CLI
 *
 * Usage: npx tsx runtime/gpu/pack.ts [OUT_DIR]; on the GPU host: sh .gpu/rt/run.sh ARTIFACT ...
 * (carry .gpu/rt and the artifact). Prints the folder's size; the whole carry must stay < 64 MiB.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { ROOT } from '../paths.ts';

const RUN_SH = `#!/bin/sh
# Runs the bundled runtime CLI with the packed Node binary (unpacked once per machine).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
NODE=/tmp/dc-node-$(cat "$HERE/node.version")
if [ ! -x "$NODE" ]; then xz -dc "$HERE/node.xz" > "$NODE.partial" && chmod +x "$NODE.partial" && mv "$NODE.partial" "$NODE"; fi
exec "$NODE" "$HERE/run-cli.mjs" "$@"
`;

function folderBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);
}

export async function pack(out = join(ROOT, '.gpu', 'rt')): Promise<{ dir: string; bytes: number }> {
  const dir = resolve(out);
  mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [join(ROOT, 'runtime', 'gpu', 'run-cli.ts')],
    outfile: join(dir, 'run-cli.mjs'),
    bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning',
    // Bundled CommonJS code (if any) needs require in an ES module.
    banner: { js: "import { createRequire as __dcCreateRequire } from 'node:module'; const require = __dcCreateRequire(import.meta.url);" },
  });
  const native = join(ROOT, 'node_modules', '@koromix', 'koffi-linux-x64');
  const target = join(dir, 'node_modules', '@koromix', 'koffi-linux-x64');
  mkdirSync(join(target, 'linux_x64'), { recursive: true });
  for (const f of ['package.json', 'index.js', join('linux_x64', 'koffi.node')]) cpSync(join(native, f), join(target, f));
  const version = process.version;
  const versionFile = join(dir, 'node.version');
  if (!existsSync(join(dir, 'node.xz')) || !existsSync(versionFile) || readFileSync(versionFile, 'utf8').trim() !== version) {
    writeFileSync(join(dir, 'node.xz'), execFileSync('xz', ['-T2', '-6', '-c', process.execPath], { maxBuffer: 1 << 30 }));
    writeFileSync(versionFile, `${version}\n`);
  }
  writeFileSync(join(dir, 'run.sh'), RUN_SH);
  chmodSync(join(dir, 'run.sh'), 0o755);
  return { dir, bytes: folderBytes(dir) };
}

if (process.argv[1] && /pack\.ts$/.test(process.argv[1])) {
  const { dir, bytes } = await pack(process.argv[2]);
  console.log(`packed ${dir}: ${(bytes / 2 ** 20).toFixed(1)} MiB`);
}
