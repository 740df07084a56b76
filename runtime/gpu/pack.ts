/**
 * pack: everything the GPU host needs to run an artifact, in one folder (default .gpu/rt), since
 * that host has no Node.js.
 *
 *   run-cli.mjs                   runtime/gpu/run-cli.ts and everything it imports (koffi's JS too),
 *                                 one ESM file bundled by esbuild
 *   node_modules/@koromix/koffi-linux-x64/   koffi's native module for linux x64 (the bundle's
 *                                 createRequire finds it there)
 *   node.xz                       this machine's Node binary, symbols stripped, xz -9e (about 22 MB;
 *                                 rebuilt only when the Node version changes: node.version)
 *   bench.mjs                     bench/cli.ts (npx bench) bundled the same way
 *   serve.mjs                     runtime/server/cli.ts (npx serve) bundled the same way; onnxruntime-node
 *                                 is not carried (the GPU executor runs the compiled modules), so a CPU
 *                                 executor there fails with one line saying so
 *   sharp.tar.xz                  sharp and libvips for linux x64 (WebP / JPEG responses, bench's PNG
 *                                 chart), xz -9 (about 7 MB), unpacked into node_modules on first use
 *   run.sh                        unpacks Node once per machine (/tmp/dc-node-VERSION) and runs the
 *                                 CLI; `run.sh compile ...` runs the compiler, `run.sh bench ...` the bench,
 *                                 `run.sh serve ...` the server
 * and beside it, .gpu/compiler: the compiler CLI (compiler/cli/compile.ts) bundled the same way
 * (bin/compile.mjs, and bin/weights-worker.mjs, the weight quantizer's worker thread) with a snapshot of what it reads from its root (templates/, support.cu,
 * package.json, the bundled full-size exports models/full/*.onnx.br), taken in the same instant, so the compiler and its templates always agree. On the
 * GPU host (nvcc is there) it compiles the repository's own models, so their weights need not
 * travel as artifacts.
 *
 * Usage: npx tsx runtime/gpu/pack.ts; on the GPU host: sh .gpu/rt/run.sh ARTIFACT ... (carry .gpu/rt,
 * .gpu/compiler and the artifact). Prints the size; the whole carry must stay < 64 MiB.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Plugin, build } from 'esbuild';
import { ROOT } from '../paths.ts';

const RUN_SH = `#!/bin/sh
# Runs the bundled runtime CLI with the packed Node binary (unpacked once per machine).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
NODE=/tmp/dc-node-$(cat "$HERE/node.version")
if [ ! -x "$NODE" ]; then xz -dc "$HERE/node.xz" > "$NODE.partial" && chmod +x "$NODE.partial" && mv "$NODE.partial" "$NODE"; fi
if [ -f "$HERE/sharp.tar.xz" ] && [ ! -d "$HERE/node_modules/sharp" ]; then tar -xJf "$HERE/sharp.tar.xz" -C "$HERE/node_modules"; fi
if [ "\${1:-}" = compile ]; then shift; exec "$NODE" "$HERE/../compiler/bin/compile.mjs" "$@"; fi
if [ "\${1:-}" = bench ]; then shift; exec "$NODE" "$HERE/bench.mjs" "$@"; fi
if [ "\${1:-}" = serve ]; then shift; exec "$NODE" "$HERE/serve.mjs" "$@"; fi
exec "$NODE" "$HERE/run-cli.mjs" "$@"
`;

const BANNER = "import { createRequire as __dcCreateRequire } from 'node:module'; const require = __dcCreateRequire(import.meta.url);";

/** onnxruntime-node in the GPU host's serve bundle: a module whose every use throws one line (its 46 MB library does not travel). */
const ORT_ABSENT: Plugin = {
  name: 'onnxruntime-absent',
  setup(b) {
    b.onResolve({ filter: /^onnxruntime-node$/ }, () => ({ path: 'onnxruntime-node', namespace: 'ort-absent' }));
    b.onLoad({ filter: /.*/, namespace: 'ort-absent' }, () => ({
      contents: "const absent = () => { throw new Error('onnxruntime-node is not in this bundle (runtime/gpu/pack.ts): the CPU executor is unavailable here; serve a compiled pipeline with the GPU executor'); };\n" +
        'export const InferenceSession = { create: absent }; export class Tensor { constructor() { absent(); } }',
      loader: 'js',
    }));
  },
};

/** sharp and its linux x64 libvips as one xz tarball (rebuilt when sharp's version changes: sharp.version beside it). */
function packSharp(out: string): void {
  const modules = join(ROOT, 'node_modules');
  const version = (JSON.parse(readFileSync(join(modules, 'sharp', 'package.json'), 'utf8')) as { version: string }).version;
  const versionFile = out.replace(/\.tar\.xz$/, '.version');
  if (existsSync(out) && existsSync(versionFile) && readFileSync(versionFile, 'utf8').trim() === version) return;
  const parts = ['sharp', 'detect-libc', 'semver', join('@img', 'colour'), join('@img', 'sharp-linux-x64'), join('@img', 'sharp-libvips-linux-x64')];
  writeFileSync(out, execFileSync('tar', ['-cJf', '-', '-C', modules, ...parts], { maxBuffer: 1 << 30 }));
  writeFileSync(versionFile, `${version}\n`);
}

function folderBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? folderBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0);
}

export async function pack(): Promise<{ dir: string; bytes: number }> {
  const dir = join(ROOT, '.gpu', 'rt');
  mkdirSync(dir, { recursive: true });
  // Bundled CommonJS code needs `require` in an ES module: the banner defines it.
  const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning', banner: { js: BANNER } } as const;
  await build({ ...common, entryPoints: [join(ROOT, 'runtime', 'gpu', 'run-cli.ts')], outfile: join(dir, 'run-cli.mjs') });
  // npx bench, for `run.sh bench ...` (beside run-cli, so koffi's native module resolves the same way).
  // Entered through a stub that imports main by name (a footer calling `main` could bind another module's).
  await build({
    ...common, stdin: { contents: "import { main } from './bench/cli.ts'; const code = await main(process.argv.slice(2)); if (code) process.exit(code);", resolveDir: ROOT, loader: 'ts' },
    outfile: join(dir, 'bench.mjs'), external: ['sharp', 'onnxruntime-node'],
  });
  // npx serve, for `run.sh serve ...`: the GPU executor only (onnxruntime-node stands in as a module that says it is absent).
  await build({
    ...common, stdin: { contents: "import { main } from './runtime/server/cli.ts'; await main(process.argv.slice(2));", resolveDir: ROOT, loader: 'ts' },
    outfile: join(dir, 'serve.mjs'), external: ['sharp'], plugins: [ORT_ABSENT],
  });
  packSharp(join(dir, 'sharp.tar.xz'));
  // The compiler finds its root as the bundle's folder's parent (compiler/paths.ts): .gpu/compiler.
  const snap = join(ROOT, '.gpu', 'compiler');
  rmSync(snap, { recursive: true, force: true });
  cpSync(join(ROOT, 'templates'), join(snap, 'templates'), { recursive: true });
  cpSync(join(ROOT, 'runtime', 'gpu', 'support.cu'), join(snap, 'runtime', 'gpu', 'support.cu'));
  cpSync(join(ROOT, 'package.json'), join(snap, 'package.json'));
  // The bundled full-size exports (416 KB of brotli), so `run.sh compile bundled:NAME` (and a description naming them) works there.
  for (const f of readdirSync(join(ROOT, 'models', 'full')).filter((n) => n.endsWith('.onnx.br'))) cpSync(join(ROOT, 'models', 'full', f), join(snap, 'models', 'full', f));
  await build({
    ...common, entryPoints: [join(ROOT, 'compiler', 'cli', 'compile.ts')], outfile: join(snap, 'bin', 'compile.mjs'),
    external: ['fsevents', 'chokidar'], footer: { js: 'process.exitCode = await main(process.argv.slice(2));' },
  });
  // The weight quantizer's worker thread, beside the bundle (compiler/quant/weights.ts workerEntry()).
  await build({ ...common, entryPoints: [join(ROOT, 'compiler', 'quant', 'weights-worker.ts')], outfile: join(snap, 'bin', 'weights-worker.mjs') });
  const native = join(ROOT, 'node_modules', '@koromix', 'koffi-linux-x64');
  const target = join(dir, 'node_modules', '@koromix', 'koffi-linux-x64');
  mkdirSync(join(target, 'linux_x64'), { recursive: true });
  for (const f of ['package.json', 'index.js', join('linux_x64', 'koffi.node')]) cpSync(join(native, f), join(target, f));
  const version = process.version;
  const versionFile = join(dir, 'node.version');
  if (!existsSync(join(dir, 'node.xz')) || !existsSync(versionFile) || readFileSync(versionFile, 'utf8').trim() !== version) {
    // Symbols stripped (a copy; 99 -> 86 MB for Node 20) and xz -9e: 24.2 -> 21.9 MB, room in a call's 64 MiB carry.
    const stripped = join(tmpdir(), `dc-node-${process.pid}`);
    cpSync(process.execPath, stripped);
    try {
      try { execFileSync('strip', [stripped]); } catch { /* no strip here: the binary as it is */ }
      writeFileSync(join(dir, 'node.xz'), execFileSync('xz', ['-T2', '-9e', '-c', stripped], { maxBuffer: 1 << 30 }));
    } finally {
      rmSync(stripped, { force: true });
    }
    writeFileSync(versionFile, `${version}\n`);
  }
  writeFileSync(join(dir, 'run.sh'), RUN_SH);
  chmodSync(join(dir, 'run.sh'), 0o755);
  return { dir, bytes: folderBytes(dir) + folderBytes(snap) };
}

if (process.argv[1] && /pack\.ts$/.test(process.argv[1])) {
  const { dir, bytes } = await pack();
  console.log(`packed ${dir}: ${(bytes / 2 ** 20).toFixed(1)} MiB`);
}
