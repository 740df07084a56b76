/**
 * Segmented row kernels (dc.SegmentedKernel, passes/fuse-horizontal.ts; compiler/codegen/render.ts
 * renderSegmented) on the CPU machine: the tiny Flux.2 and Qwen-Image transformers' twin kernels
 * launch once with each segment's arguments in turn, exactly what the segments' own launches would
 * pass; the grid is split for the fewest rows a CTA (segmentCtas); the kernels build for both targets with no
 * spill; `separate` launches a kernel as its segments; values a later pass renamed are launched
 * under their new names. Their numerics run on the GPU
 * (test/gpu/cases.ts: the flux2_dev cases at 64 + 64 tokens are checked against the reference).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { isSegmented, segmentDescriptors } from '../compiler/codegen/elementwise.ts';
import { deferDequant, kernelPlan, type Launch } from '../compiler/codegen/plan.ts';
import { lateReads } from '../compiler/codegen/dequant.ts';
import { renderElementwise, renderSegmented, renderUnit, segmentCtas } from '../compiler/codegen/render.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { fuseElementwise } from '../passes/fuse-elementwise.ts';
import { fuseHorizontal } from '../passes/fuse-horizontal.ts';
import { eliminateCommon } from '../passes/simplify/eliminate-common.ts';
import { removeNoops } from '../passes/simplify/remove-noops.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { applyPass, buildGraph, randomTensor } from './helpers/graph.ts';

const optimised = (name: string) => runPipeline(inferTypes(importOnnx(join(tinyDir(name), 'model.onnx')).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'), 'h100')) }).graph;
/** The same graph with every segmented kernel replaced by its row kernels (what fuse-horizontal merged). */
const unmerged = (g: Graph): Graph => ({ ...g, nodes: g.nodes.flatMap((n) => (isSegmented(n) ? n.body!.nodes : [n])) });
const plan = (g: Graph, separate?: ReadonlySet<string>) => {
  const deferred = deferDequant(g);
  return kernelPlan(g, planMemory(g, lateReads(g, deferred)), deferred, separate ? { separate } : {});
};
type KernelLaunch = Extract<Launch, { kind: 'kernel' }>;
const byNode = (launches: Launch[]) => new Map(launches.filter((l): l is KernelLaunch => l.kind === 'kernel').map((l) => [l.node, l]));

describe('segmented row kernels', () => {
  it('splits the grid for the fewest rows a CTA, the CTAs left to the smaller segment, at most one a row', () => {
    // Flux.2's image and text streams at 3 CTAs an SM: 4608 rows need 12 a CTA (342 + 43 CTAs), 11 CTAs left.
    expect(segmentCtas([4096, 512], 396)).toEqual([342, 54]);
    // Qwen-Image's CFG batch at 4 CTAs an SM: 16 rows a CTA for the 8192 image rows, 16 CTAs of 4 rows for the 64 text rows.
    expect(segmentCtas([8192, 64], 528)).toEqual([512, 16]);
    expect(segmentCtas([512, 4096], 132)).toEqual([18, 114]); // 36 rows a CTA
    expect(segmentCtas([4096, 2], 264)).toEqual([256, 2]); // never more CTAs than rows
    expect(segmentCtas([3, 5], 4)).toEqual([2, 2]); // 2 rows a CTA
    // Fewer CTAs than segments (a GPU test's grid, renderSegmented's ctasTotal): refused, not a search without end.
    expect(() => segmentCtas([4, 4], 1)).toThrow(/segmented kernel grid: expected at least one CTA a segment.*found 1 CTAs for rows \[4, 4\]/);
  });

  it.each(['flux2', 'qwen_image'])('%s: each segmented kernel launches once with its segments\' own arguments in turn, or as its segments where one dequantizes an input and the other does not', (name) => {
    const g = optimised(name);
    const segmentedNodes = g.nodes.filter(isSegmented);
    const deferred = deferDequant(g);
    const { launches } = plan(g);
    const merged = byNode(launches);
    const alone = byNode(plan(unmerged(g)).launches);
    const declined = segmentedNodes.filter((n) => !renderSegmented(segmentDescriptors(g, n, deferred), n.outputs[0]));
    expect(segmentedNodes.length - declined.length, name).toBeGreaterThan(0);
    // (At these sizes every segment takes as many CTAs an SM alone: only dequantization tells them apart.)
    const dequantDiffers = (n: Node) => new Set(segmentDescriptors(g, n, deferred).map((d) => d.inputs.map((i) => !!i.dequant).join())).size > 1;
    expect(declined).toEqual(segmentedNodes.filter(dequantDiffers));
    for (const node of declined) {
      const own = launches.filter((l): l is KernelLaunch => l.kind === 'kernel' && l.node === node.outputs[0]);
      const parts = node.body!.nodes.map((b) => alone.get(b.outputs[0])!);
      expect(own.map((l) => [l.kernel, l.args.map((a) => a.value)])).toEqual(parts.map((p) => [p.kernel, p.args.map((a) => a.value)]));
    }
    for (const node of segmentedNodes.filter((n) => !declined.includes(n))) {
      const launch = merged.get(node.outputs[0])!;
      expect(launch.kernel, node.outputs[0]).toMatch(/^ews_/);
      // Each body kernel's launch in the unmerged graph is named by its first output.
      const parts = node.body!.nodes.map((b) => alone.get(b.outputs[0])!);
      // (Values, not offsets: the unmerged graph has its own memory plan.)
      expect(launch.args.map((a) => a.value)).toEqual(parts.flatMap((p) => p.args.map((a) => a.value)));
      expect(launch.block).toBe(parts[0].block);
      const ds = segmentDescriptors(g, node, deferred);
      expect(launch.grid).toBeLessThanOrEqual(segmentCtas(ds.map((d) => d.rows), 1e9).reduce((a, b) => a + b, 0));
      expect(launch.grid).toBeLessThanOrEqual(parts.reduce((a, p) => a + p.grid, 0));
    }
  });

  it('`separate` launches a segmented kernel as its segments, the launches of the unmerged graph', () => {
    const g = optimised('flux2');
    const names = new Set(plan(g).launches.filter((l): l is KernelLaunch => l.kind === 'kernel' && l.kernel.startsWith('ews_')).map((l) => l.kernel));
    const separate = plan(g, names).launches;
    expect(separate.some((l) => l.kind === 'kernel' && l.kernel.startsWith('ews_'))).toBe(false);
    const launches = (list: Launch[]) => list.map((l) => (l.kind === 'kernel' ? `${l.kernel}(${l.args.map((a) => a.value)})` : l.kind)).sort();
    expect(launches(separate)).toEqual(launches(plan(unmerged(g)).launches));
  });

  it.each(['h100', 'b200'] as const)('the tiny transformers\' segmented kernels build for %s with no spill', async (target) => {
    const kernels = ['flux2', 'qwen_image'].flatMap((name) => {
      const g = optimised(name);
      const deferred = deferDequant(g);
      return g.nodes.filter(isSegmented).flatMap((n) => {
        const ds = segmentDescriptors(g, n, deferred);
        return [renderSegmented(ds, n.outputs[0]) ?? [], ...ds.map(renderElementwise)].flat();
      });
    });
    expect(kernels.filter((k) => k.name.startsWith('ews_')).length).toBeGreaterThan(0);
    const report = await buildKernels([{ name: `segments_${target}`, source: renderUnit(kernels), hot: true }], { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    expect(report.spills).toBe(0);
  }, 300_000);

  it('launches with the node\'s values where a later pass renamed them, not the body\'s formal names', () => {
    // The pipeline runs its passes again after fuse-horizontal: remove-noops renames b to the graph
    // output o, eliminate-common merges the equal norm weights wa and wb; the body keeps b and wb.
    const w = randomTensor([16], 1);
    const g = buildGraph({
      inputs: { x: ['float32', [1, 8, 16]], y: ['float32', [1, 3, 16]] },
      constants: { wa: w, wb: w },
      nodes: [
        ['LayerNormalization', ['x', 'wa'], ['a'], { axis: -1 }],
        ['LayerNormalization', ['y', 'wb'], ['b'], { axis: -1 }],
        ['Identity', ['b'], ['o']],
      ],
      outputs: ['a', 'o'],
    });
    let after = applyPass(fuseHorizontal, applyPass(fuseElementwise, g).after).after;
    for (const pass of [removeNoops, eliminateCommon]) after = applyPass(pass, after).after;
    const [node] = after.graph.nodes.filter(isSegmented);
    expect([node.inputs, node.outputs, node.body!.inputs, node.body!.outputs]).toEqual([['x', 'wa', 'y', 'wa'], ['a', 'o'], ['x', 'wa', 'y', 'wb'], ['a', 'b']]);
    const launches = plan(after.graph).launches.filter((l): l is KernelLaunch => l.kind === 'kernel');
    expect(launches.map((l) => l.args.map((a) => a.value))).toEqual([['x', 'wa', 'a', 'y', 'wa', 'o']]);
  });

  it('refuses anything but row kernels of one width, naming the launch', () => {
    const g = optimised('flux2');
    const node = g.nodes.find(isSegmented)!;
    const [d] = segmentDescriptors(g, node, new Map());
    expect(() => renderSegmented([d], 'launch -> x')).toThrow(/launch -> x: expected two or more row kernels/);
    expect(() => renderSegmented([d, { ...d, mode: 'flat' }], 'launch -> x')).toThrow(/row, flat/);
    expect(() => renderSegmented([d, { ...d, cols: d.cols * 4, threads: d.threads * 4 }], 'launch -> y')).toThrow(/launch -> y: expected segments of one block size/);
  });
});
