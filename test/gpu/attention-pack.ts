/**
 * The attention pack (AttentionPack) on the GPU: bytes against a baseline build of the pack and
 * timings of both, driven from the CPU machine.
 *
 *   npx tsx test/gpu/attention-pack.ts prepare DIR [BASE_ROOT]
 *       the real pack nodes of flux2_dev (joint and single-stream) and qwen_image at full size
 *       (Qwen-Image as its pipeline runs it: 32 text tokens, both CFG passes as batch 2) and of the
 *       tiny fixtures, as `npx compile --target h100` emits them (the horizontal passes, V's amax from
 *       its GEMMs; deferred GEMM outputs dequantized as the pack loads where the own GEMM does not
 *       scale them: plan.ts deferDequant), qk = fp8 (the transformers' default) and bf16.
 *       Each case: the baseline kernel (the pack of BASE_ROOT, a checkout of another commit, e.g.
 *       a `git worktree` of HEAD; default: this checkout) and this checkout's pack with its
 *       variants (VARIANTS), all built for sm_90a into DIR/kernels.cubin, launched on the same
 *       generated inputs into outputs poisoned with 0xFF, compared byte for byte, then timed.
 *   (GPU) nvcc -O2 -o ah test/gpu/attention_harness.cu -lcuda && ./ah DIR $OUT > $OUT/pack-log.txt
 *       (PACK_SKIP=label,...: variants left out)
 *   npx tsx test/gpu/attention-pack.ts check DIR LOG
 *       every output of every variant must equal the baseline's bytes (Q/K codes, scales, V):
 *       the attention kernel and the reference executor read exactly these; the timings table.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildKernels } from '../../compiler/build/index.ts';
import { type PackDescriptor, packDescriptor, renderPack } from '../../compiler/codegen/attention.ts';
import { renderUnit, type RenderedKernel } from '../../compiler/codegen/render.ts';
import { bytesFor, type DType } from '../../compiler/ir/dtype.ts';
import { FULL_MODELS, fullModelPath } from '../../compiler/full-models.ts';
import type { Graph, Node } from '../../compiler/ir/graph.ts';
import { ROOT } from '../../compiler/paths.ts';
import { h100Graph } from '../helpers/h100-graph.ts';
import { KIND, WIDTH, type ElemType } from './attention-data.ts';

/**
 * `attention`: the policy's (`auto`, the default: FP8 Q·Kᵀ and P·V, V coded by the pack from its GEMMs' amax;
 * `fp8`: FP8 Q·Kᵀ, bf16 P·V), `qk` the pack's; `cfg`: Qwen-Image as its pipeline compiles it (32 text tokens,
 * both CFG passes as batch 2).
 */
interface Spec { name: string; model: string; shapes?: Record<string, number>; cfg?: boolean; attention: 'bf16' | 'fp8' | 'auto'; qk?: 'fp8'; segments: number; full: boolean }
type Variant = Partial<Pick<PackDescriptor, 'threads' | 'group' | 'order' | 'stage' | 'persist' | 'park' | 'minBlocks' | 'passUnroll'>>;

const tiny = (m: string) => join(ROOT, 'models', 'tiny', m, 'model.onnx');
const full = fullModelPath;
const FLUX = FULL_MODELS.flux2_dev;

const SPECS: Spec[] = [
  { name: 'flux2_joint_auto', model: full('flux2_dev'), shapes: FLUX, attention: 'auto', qk: 'fp8', segments: 2, full: true },
  { name: 'flux2_single_auto', model: full('flux2_dev'), shapes: FLUX, attention: 'auto', qk: 'fp8', segments: 1, full: true },
  { name: 'qwen_image_auto', model: full('qwen_image'), cfg: true, attention: 'auto', qk: 'fp8', segments: 2, full: true },
  // 256 text tokens (batch 1): uniform V blocks among the keys the mask may drop.
  { name: 'qwen_image_auto_256', model: full('qwen_image'), attention: 'auto', qk: 'fp8', segments: 2, full: true },
  { name: 'flux2_single_fp8', model: full('flux2_dev'), shapes: FLUX, attention: 'fp8', segments: 1, full: true },
  { name: 'flux2_single_bf16', model: full('flux2_dev'), shapes: FLUX, attention: 'bf16', segments: 1, full: true },
  { name: 'qwen_image_bf16', model: full('qwen_image'), cfg: true, attention: 'bf16', segments: 2, full: true },
  { name: 'tiny_flux2_joint_fp8', model: tiny('flux2'), attention: 'fp8', segments: 2, full: false },
  { name: 'tiny_flux2_single_bf16', model: tiny('flux2'), attention: 'bf16', segments: 1, full: false },
  { name: 'tiny_qwen_image_fp8', model: tiny('qwen_image'), attention: 'fp8', segments: 2, full: false },
  { name: 'tiny_qwen_image_bf16', model: tiny('qwen_image'), attention: 'bf16', segments: 2, full: false },
  { name: 'tiny_mistral_fp8', model: tiny('mistral_text_encoder'), attention: 'fp8', segments: 1, full: false },
  { name: 'tiny_mistral_bf16', model: tiny('mistral_text_encoder'), attention: 'bf16', segments: 1, full: false },
  { name: 'tiny_qwen_te_bf16', model: tiny('qwen_text_encoder'), attention: 'bf16', segments: 1, full: false },
];

/** Variants timed beside the descriptor's own settings (full-size fp8 cases; kept only where they build without spills). */
const VARIANTS: Record<string, Variant> = {
  registers: { park: false, minBlocks: 2 },
  unstaged: { stage: false, park: false, minBlocks: 2 },
  persist: { persist: 264, park: false, minBlocks: 2 },
  // Bounds of 4 CTAs a SM (64 registers): Flux.2's joint pack then builds at 64 (72 by default); some of Qwen-Image's spill.
  b4: { minBlocks: 4 },
  // Persistent with the values parked (the loop's barrier ahead of the next item's copies).
  parkPersist: { persist: 264 },
};

const typeOf = (g: Graph, v: string) => g.types.get(v) as unknown as { dtype: DType; shape: number[] };
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case { name: string; kernels: { label: string; name: string }[]; outputs: number }

async function prepare(dir: string, baseRoot: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const base = (await import(join(baseRoot, 'compiler', 'codegen', 'attention.ts'))) as typeof import('../../compiler/codegen/attention.ts');
  const kernels = new Map<string, RenderedKernel>();
  const lines: string[] = [];
  const cases: Case[] = [];
  const candidates: { spec: Spec; lines: (ok: Set<string>) => string[]; variants: { label: string; name: string }[] }[] = [];
  for (const [ci, spec] of SPECS.entries()) {
    // The graph as `npx compile --target h100` makes it (the horizontal passes too: V's amax from its GEMMs).
    const { graph: g, deferred } = h100Graph(spec.model, spec.shapes ?? {}, { cfg: spec.cfg, attention: spec.attention });
    const qk = spec.qk ?? spec.attention;
    if (!g.nodes.some((n) => n.op === 'AttentionPack' && n.attrs.qk === qk)) { console.log(`${spec.name}: no ${qk} pack, skipped`); continue; }
    const node = g.nodes.find((n) => n.op === 'AttentionPack' && n.attrs.segments === spec.segments) as Node;
    const d = packDescriptor(g, node, deferred);
    const old = base.renderPack(base.packDescriptor(g, node, deferred));
    const variants = [{ label: 'new', k: renderPack(d) }];
    if (spec.full) {
      const skip = (process.env.PACK_SKIP ?? '').split(',');
      for (const [label, v] of Object.entries(VARIANTS).filter(([l]) => !skip.includes(l))) {
        try { variants.push({ label, k: renderPack({ ...d, ...v }) }); } catch (e) { console.log(`${spec.name} ${label}: ${(e as Error).message}`); }
      }
    }
    for (const { args: _, ...k } of [old, ...variants.map((v) => v.k)]) kernels.set(k.name, k);
    const ids = new Map<string, number>();
    const id = (v: string) => ids.get(v) ?? (ids.set(v, ids.size), ids.size - 1);
    const roots = d.inputs.map((x) => x.value);
    const outs = [old, ...variants.map((v) => v.k)].map((k, i) => node.outputs.map((o) => ({ value: `${o}#${i}`, type: typeOf(g, o) })));
    candidates.push({
      spec,
      variants: variants.map((v) => ({ label: v.label, name: v.k.name })),
      lines: (ok) => {
        const kept = [old, ...variants.map((v) => v.k)].map((k, i) => ({ k, i })).filter(({ k, i }) => i === 0 || ok.has(k.name));
        const out: string[] = [`case ${spec.name}`];
        for (const [ri, r] of roots.entries()) {
          const t = d.inputs[ri].type as ElemType;
          out.push(`buf ${id(r)} ${numel(typeOf(g, r).shape) * WIDTH[t]}`);
          // Raw GEMM sums and activations in [-1, 1); scales and weights about 1 (RMSNorm, RoPE tables: any values do).
          out.push(`fill ${id(r)} ${KIND[t]} ${numel(typeOf(g, r).shape)} ${100 * ci + ri} 1`);
        }
        for (const { i } of kept) for (const o of outs[i]) out.push(`buf ${id(o.value)} ${bytesFor(o.type.dtype, numel(o.type.shape))}`, `poison ${id(o.value)}`);
        for (const { k, i } of kept) out.push(`launch ${k.name} ${k.grid} ${k.block} ${k.sharedBytes} ${k.args.length} ${[...roots.map(id), ...outs[i].map((o) => id(o.value))].join(' ')}`);
        kept.slice(1).forEach(({ i }) => outs[i].forEach((o, j) => out.push(`same ${id(outs[0][j].value)} ${id(o.value)}`)));
        if (spec.full) kept.forEach(({ i }, n) => out.push(`time ${i === 0 ? 'base' : variants[i - 1].label} 20 ${n} ${n}`));
        out.push('end');
        cases.push({ name: spec.name, kernels: kept.map(({ k, i }) => ({ label: i === 0 ? 'base' : variants[i - 1].label, name: k.name })), outputs: node.outputs.length });
        return out;
      },
    });
    console.log(`${spec.name}: base ${old.name} (${old.grid}x${old.block}), ${variants.map((v) => `${v.label} ${v.k.name} (${v.k.grid}x${v.k.block}, ${v.k.sharedBytes} B)`).join(', ')}`);
  }
  const unit = renderUnit([...kernels.values()]);
  writeFileSync(join(dir, 'unit.cu'), unit);  // the source of the cubin (Nsight Compute's source view: /kernels/pack.cu)
  const report = await buildKernels([{ name: 'pack', source: unit, hot: true, acceptSpills: true }], { target: 'h100', cacheDir: join(ROOT, '.gpu', 'build-cache') });
  const fns = report.units[0].functions;
  const ok = new Set(fns.filter((f) => f.spillStoreBytes === 0 && f.spillLoadBytes === 0).map((f) => f.name));
  for (const f of fns) console.log(`${f.name}: ${f.registers} registers, spills ${f.spillStoreBytes}/${f.spillLoadBytes}`);
  for (const c of candidates) lines.push(...c.lines(ok));
  writeFileSync(join(dir, 'kernels.cubin'), report.cubins.get('pack')!);
  writeFileSync(join(dir, 'cases.txt'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
}

function check(dir: string, logFile: string): void {
  const cases: Case[] = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
  const log = readFileSync(logFile, 'utf8').split('\n');
  console.log(log.find((l) => l.startsWith('device')));
  let failed = 0;
  console.log('| case | variant | kernel | differing bytes (per output) | µs | vs base |\n| --- | --- | --- | --- | ---: | ---: |');
  for (const c of cases) {
    const same = log.filter((l) => l.startsWith(`same ${c.name} `)).map((l) => Number(l.split(' ')[4]));
    const times = new Map(log.filter((l) => l.startsWith(`time ${c.name} `)).map((l) => [l.split(' ')[2], Number(l.split(' ')[3])]));
    if (!log.includes(`done ${c.name}`)) { console.log(`| ${c.name} | | | not run | | |`); failed++; continue; }
    c.kernels.forEach((k, i) => {
      const diffs = i === 0 ? [] : same.slice((i - 1) * c.outputs, i * c.outputs);
      const bad = i > 0 && (diffs.length !== c.outputs || diffs.some((x) => x !== 0));
      if (bad) failed++;
      const t = times.get(k.label), b = times.get('base');
      console.log(`| ${c.name} | ${k.label} | ${k.name} | ${i === 0 ? 'baseline' : `${diffs.join(', ')}${bad ? ' FAIL' : ''}`} | ${t?.toFixed(1) ?? ''} | ${t && b ? (b / t).toFixed(2) + 'x' : ''} |`);
    });
  }
  console.log(`\n${failed ? `${failed} FAILED` : 'all outputs identical to the baseline'}`);
  if (failed) process.exitCode = 1;
}

const [cmd, dir, arg] = process.argv.slice(2);
if (cmd === 'prepare') await prepare(dir, arg ?? ROOT);
else if (cmd === 'check') check(dir, arg);
else console.log('usage: attention-pack.ts prepare DIR [BASE_ROOT] | check DIR LOG');
