/**
 * report.md: what the compiler did to a model — nodes per op type before and after, FLOPs,
 * parameters, time per stage, rewrites per pass rule (a rule that matched nothing shows 0), and
 * the verification result.
 */
import type { CompileSummary } from './compile.ts';

const fmt = (n: number) => (n >= 1e12 ? `${(n / 1e12).toFixed(2)} T` : n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${n}`);

export function renderReport(s: CompileSummary, before: Record<string, number>, after: Record<string, number>): string {
  const lines: string[] = [];
  lines.push(`# Compile report: ${s.model}`, '');
  lines.push(`- source: \`${s.source}\``);
  lines.push(`- target: ${s.target}, precision: ${s.precision}`);
  lines.push(`- shapes: ${Object.entries(s.shapes).map(([k, v]) => `${k} ${v}`).join('; ')}`);
  lines.push(`- nodes: ${s.nodes.input} in, ${s.nodes.optimized} after optimisation`);
  lines.push(`- FLOPs per run: ${fmt(s.flops)}FLOP (GEMMs, convolutions, attention)`);
  lines.push(`- parameters: ${fmt(s.parameters.count)} (${(s.parameters.bytes / 2 ** 30).toFixed(3)} GiB as stored)`);
  if (s.verify) lines.push(`- verify: relative L2 ${s.verify.relL2.toExponential(3)}, cosine ${s.verify.cosine.toFixed(7)} (bar: L2 <= ${s.verify.tolerance}, cosine >= ${s.verify.minCosine}) — ${s.verify.passed ? 'passed' : 'FAILED'}`);
  else lines.push('- verify: not run (pass --verify DIR)');
  lines.push(`- build: ${s.build ? `${s.build.kernels} element-wise kernels in ${s.build.units} units (${s.build.cached} units from the cache), ${s.build.spills} spilling functions, ${s.build.seconds.toFixed(1)} s, nvcc ${s.build.nvcc}` : 'not run (--no-build)'}`);
  lines.push(`- FusedAttention: ${s.fusedAttention}; launches per run: ${s.launches}`);
  if (s.memory) {
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    lines.push(`- activation arena: ${mb(s.memory.arenaBytes)} (max-live lower bound ${mb(s.memory.maxLiveBytes)}, ${(s.memory.arenaBytes / Math.max(s.memory.maxLiveBytes, 1)).toFixed(3)}x; one buffer each: ${mb(s.memory.naiveBytes)})`);
  }
  lines.push('', '## Launches per block', '', '| blocks | count | launches per block (min-max) | per block |', '| --- | ---: | --- | --- |');
  for (const k of s.launchReport.kinds) lines.push(`| ${k.kind} | ${k.blocks} | ${k.min}-${k.max} | ${k.perBlock.join(' ')} |`);
  lines.push(`| outside blocks | | ${s.launchReport.outsideBlocks} | |`, `| shared by blocks | | ${s.launchReport.shared} | |`);
  if (s.gemms.length) {
    lines.push('', `## Precision per GEMM (${s.precision})`, '', '| GEMM | weights | shape | precision | reason | weight rel. L2 |', '| --- | --- | --- | --- | --- | ---: |');
    for (const g of s.gemms) {
      const err = g.weightRelL2 !== undefined ? g.weightRelL2.toExponential(2) : g.quantized ? 'weights absent' : '';
      lines.push(`| ${g.node} | ${g.weights.join(', ')} | [${g.shape}] | ${g.weightOnly ? 'fp8 weights, activation as is' : g.quantized ? s.precision : 'high (bf16)'} | ${g.reason} | ${err} |`);
    }
  }
  lines.push('', '## Time per stage', '', '| stage | ms |', '| --- | ---: |');
  for (const [k, v] of Object.entries(s.stages)) lines.push(`| ${k} | ${v.toFixed(0)} |`);
  lines.push('', '## Passes', '', '| pass | ms | nodes before | nodes after | rewrites |', '| --- | ---: | ---: | ---: | --- |');
  for (const p of s.passes) {
    const rw = Object.entries(p.rewrites).map(([r, n]) => `${r}: ${n}`).join('; ');
    lines.push(`| ${p.name} | ${p.ms.toFixed(0)} | ${p.nodesBefore} | ${p.nodesAfter} | ${rw} |`);
  }
  lines.push('', '## Nodes per op type', '', '| op | input | optimised |', '| --- | ---: | ---: |');
  for (const op of [...new Set([...Object.keys(before), ...Object.keys(after)])]) lines.push(`| ${op} | ${before[op] ?? 0} | ${after[op] ?? 0} |`);
  return lines.join('\n') + '\n';
}
