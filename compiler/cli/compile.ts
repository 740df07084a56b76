/**
 * `npx compile [MODEL.onnx | DIR | PIPELINE.json | bundled:NAME] --target h100|b200 [--out DIR] [--shape name=N,...] [--batch N] [--text-length N] [--size WxH[,WxH...]]
 *  [--precision fp32|bf16|fp8|nvfp4] [--policy FILE] [--emulate] [--verify DIR] [--no-build] [--json]
 *  [--dump-after PASS,...] [--weights CHECKPOINT]`
 *
 * One graph (MODEL.onnx, or a folder holding model.onnx) runs compileModel. No argument, a pipeline
 * description (.json) or a family folder holding pipeline.json runs compilePipeline: every network of
 * the pipeline into one artifact the server runs (pipeline-artifact.ts); the bundled tiny Flux.2 by
 * default. Prints a short summary (or, with --json, the summary object as the last stdout line).
 * User errors print one line and exit 1; a bug exits 70 with its stack.
 */
import { compileModel, type CompileSummary } from '../compile.ts';
import { type PipelineSummary, compilePipeline, isPipelinePath } from '../pipeline-artifact.ts';
import { CompileError } from '../errors.ts';
import { parseCommandLine, runCommand } from './command.ts';
import { parseShapeFlag } from '../ir/specialise.ts';

/** --batch N / --text-length N: a positive integer. */
function parseCountFlag(flag: string, what: string, text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new CompileError({ where: flag, expected: `a positive integer (${what})`, found: `'${text}'` });
  return Number(text);
}

const USAGE = 'usage: npx compile [MODEL.onnx | DIR | PIPELINE.json | bundled:NAME] [--target h100|b200] [--out DIR] [--shape name=N,...] [--batch N] [--text-length N] [--size WxH[,WxH...]] [--precision fp32|bf16|fp8|nvfp4] [--policy FILE] [--emulate] [--verify DIR] [--no-build] [--json] [--dump-after PASS,...] [--weights CHECKPOINT]';

function summaryLines(s: CompileSummary): string[] {
  const lines = [
    `compiled ${s.model} for ${s.target} (${s.precision}): ${s.nodes.input} -> ${s.nodes.optimized} nodes, ${s.launches} launches, ${s.fusedAttention} fused attentions, ${(s.flops / 1e9).toFixed(3)} GFLOP per run, ${s.seconds.toFixed(2)} s`,
  ];
  if (s.memory) lines.push(`memory: activation arena ${(s.memory.arenaBytes / 1e6).toFixed(1)} MB (max-live ${(s.memory.maxLiveBytes / 1e6).toFixed(1)} MB)`);
  for (const k of s.launchReport.kinds) lines.push(`launches per ${k.kind.replace(/s$/, '')}: ${k.min === k.max ? k.min : `${k.min}-${k.max}`} (${k.blocks} blocks)`);
  if (s.checkpoint) {
    const c = s.checkpoint;
    lines.push(`weights: ${c.bound} tensors from ${c.checkpoint} (initializer prefix '${c.namePrefix}' -> key '${c.keyPrefix}')${c.derived.length ? `, ${c.derived.length} computed from its config (${c.derived.join(', ')})` : ''}${c.unused ? `, ${c.unused} of its tensors not used by this graph` : ''}`);
  }
  if (s.verify) lines.push(`verify: relative L2 ${s.verify.relL2.toExponential(3)}, cosine ${s.verify.cosine.toFixed(7)} (bar: L2 <= ${s.verify.tolerance}, cosine >= ${s.verify.minCosine}) ${s.verify.passed ? 'passed' : 'FAILED'}`);
  const quantized = s.gemms.filter((g) => g.quantized).length;
  const weightOnly = s.gemms.filter((g) => g.weightOnly).length;
  if (s.gemms.length) lines.push(`gemms: ${quantized} of ${s.gemms.length} in ${s.precision}${weightOnly ? ` (${weightOnly} with FP8 weights only)` : ''}, ${s.gemms.length - quantized} kept in high precision (see report.md)`);
  lines.push(`artifact: ${s.artifact}`);
  return lines;
}

function pipelineLines(s: PipelineSummary): string[] {
  return [
    `compiled pipeline ${s.name} (${s.model}) for ${s.target} (${s.precision}), sizes ${s.sizes.join(', ')}, ${s.seconds.toFixed(2)} s`,
    ...Object.entries(s.modules).map(([role, m]) => `  ${role}: ${m.model}, ${m.nodes.input} -> ${m.nodes.optimized} nodes, ${m.launches} launches, ${m.fusedAttention} fused attentions${m.build ? `, ${m.build.kernels} kernels` : ''} -> ${m.artifact}/`),
    ...(s.cfgModule ? [`  transformer at batch 2 (true CFG in one run): ${s.cfgModule.launches} launches -> ${s.cfgModule.artifact}/`] : []),
    ...(s.textModules ?? []).map((t) => `  transformer for ${t.length}-token texts: ${t.launches} launches -> ${t.artifact}/${t.cfg ? ` (batch 2: ${t.cfg.artifact}/)` : ''}`),
    ...(s.sizeModules ?? []).map((x) => `  at ${x.size}: transformer ${x.transformer.launches} launches -> ${x.transformer.artifact}/${x.cfg || x.textModules ? ` (and ${[x.cfg, ...(x.textModules ?? []).flatMap((t) => [t, t.cfg])].filter(Boolean).length} more)` : ''}, VAE decoder ${x.vaeDecoder.launches} launches -> ${x.vaeDecoder.artifact}/`),
    `artifact: ${s.artifact}`,
  ];
}

export function main(argv: string[]): Promise<number> {
  return runCommand('compiler', async (out) => {
    const parsed = parseCommandLine({
        args: argv, allowPositionals: true, strict: true,
        options: {
          target: { type: 'string' }, out: { type: 'string' }, shape: { type: 'string' }, batch: { type: 'string' }, 'text-length': { type: 'string' }, size: { type: 'string' },
          precision: { type: 'string' }, verify: { type: 'string' }, 'no-build': { type: 'boolean' },
          policy: { type: 'string' }, emulate: { type: 'boolean' },
          json: { type: 'boolean' }, 'dump-after': { type: 'string' }, weights: { type: 'string' }, help: { type: 'boolean', short: 'h' },
        },
    }, USAGE.replace('usage: ', ''));
    const { values, positionals } = parsed;
    const json = (out.json = !!values.json);
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (positionals.length > 1) throw new CompileError({ where: 'command line', expected: 'at most one MODEL', found: positionals.join(' ') });
    if (positionals[0] === undefined || isPipelinePath(positionals[0])) {
      for (const flag of ['verify', 'shape', 'batch', 'text-length', 'dump-after'] as const) {
        if (values[flag] !== undefined) throw new CompileError({ where: `--${flag}`, expected: 'a flag that applies to a whole pipeline (this one applies to one graph: compile that MODEL.onnx alone)', found: `--${flag} with a pipeline` });
      }
      const s = await compilePipeline({
        pipeline: positionals[0], target: values.target, out: values.out, precision: values.precision, policy: values.policy,
        emulate: !!values.emulate, build: !values['no-build'], weights: values.weights,
        sizes: values.size?.split(',').map((x) => x.trim()),
      });
      for (const l of pipelineLines(s)) (json ? console.error : console.log)(l);
      if (json) console.log(JSON.stringify(s));
      return 0;
    }
    const summary = await compileModel({
      model: positionals[0], target: values.target, out: values.out, precision: values.precision, verify: values.verify,
      policy: values.policy, emulate: !!values.emulate,
      shape: values.shape ? parseShapeFlag(values.shape) : undefined, batch: values.batch === undefined ? undefined : parseCountFlag('--batch', 'samples per run', values.batch),
      textLength: values['text-length'] === undefined ? undefined : parseCountFlag('--text-length', 'text tokens per run', values['text-length']),
      size: values.size, build: !values['no-build'], weights: values.weights,
      dumpAfter: values['dump-after']?.split(',').map((s) => s.trim()),
    });
    const lines = summaryLines(summary);
    if (json) {
      for (const l of lines) console.error(l);
      console.log(JSON.stringify(summary));
    } else {
      for (const l of lines) console.log(l);
    }
    return 0;
  });
}
