/**
 * The VAE decoders' kernels on the CPU machine (nvcc present, no GPU; numerics are checked on the
 * GPU by test/gpu/cases.ts): the kernel plans of the tiny decoders leave no convolution, norm or
 * upsampling without a kernel, launch arguments follow the kernels' parameters, the default
 * precision policy keeps the decoders in bf16, descriptors of the real full-size nodes carry the
 * shapes and tiles they should (warpgroup tiles: every kept position and tap read inside the
 * tile), bad nodes get one-line errors, and the kernels build for sm_90a and sm_100a (every tiny
 * one; one full-size conv per tile configuration, the 128-row warpgroup split of a 3x3 conv, and
 * every full-size norm) with no spill in a hot kernel and, on sm_90a, no wgmma serialised by ptxas.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildKernels } from '../compiler/build/index.ts';
import { vaeLaunch } from '../compiler/codegen/conv-launch.ts';
import { convDescriptor, renderConv, wgTile } from '../compiler/codegen/conv.ts';
import { normDescriptor, renderNorm } from '../compiler/codegen/norm.ts';
import { kernelPlan } from '../compiler/codegen/plan.ts';
import { type RenderedKernel, renderUnit } from '../compiler/codegen/render.ts';
import { fullModelPath } from '../compiler/full-models.ts';
import type { Graph, Node } from '../compiler/ir/graph.ts';
import { inferTypes } from '../compiler/ir/infer.ts';
import { importOnnx } from '../compiler/onnx/import.ts';
import { fuseNorms } from '../passes/fuse-norms.ts';
import { lowerConv } from '../passes/lower-conv.ts';
import { pipelineFor, runPipeline } from '../passes/pipeline.ts';
import { planMemory } from '../passes/plan-memory.ts';
import { insertQuantize } from '../passes/quantize/insert.ts';
import { defaultPolicy } from '../passes/quantize/policy.ts';
import { tinyDir } from './helpers/fixtures.ts';
import { applyPass, buildGraph, floats, ints, randomTensor } from './helpers/graph.ts';

const optimise = (file: string): Graph => runPipeline(inferTypes(importOnnx(file).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
const vaeNodes = (g: Graph) => g.nodes.filter((n) => n.op === 'FusedConv' || n.attrs.kernel !== undefined);
const tiny = ['flux2_vae_decoder', 'qwen_image_vae_decoder'].map((m) => ({ name: m, graph: optimise(join(tinyDir(m), 'model.onnx')) }));

describe('VAE kernel plans (tiny decoders)', () => {
  it.each(tiny)('$name: convolutions, norms and upsampling all have kernels, with arguments in parameter order', ({ graph }) => {
    const plan = kernelPlan(graph, planMemory(graph));
    for (const op of ['Conv', 'dc.FusedConv', 'InstanceNormalization', 'ReduceL2', 'Resize', 'GatherND', 'Pad', 'dc.FusedKernel']) expect(plan.pending[op], op).toBeUndefined();
    const nodes = vaeNodes(graph);
    expect(nodes.length).toBeGreaterThan(25);
    for (const node of nodes) {
      const launch = plan.launches.find((l) => l.node === node.outputs[0]);
      expect(launch?.kind, node.outputs[0]).toBe('kernel');
      if (launch?.kind !== 'kernel') continue;
      expect(launch.args.map((a) => a.value)).toEqual([...node.inputs.filter(Boolean), node.outputs[0]]);
      const k = plan.kernels.find((x) => x.name === launch.kernel)!;
      // The parameter list of the rendered kernel has one pointer per argument.
      const params = k.source.slice(k.source.indexOf(`${k.name}(`)).split(')')[0].split(',').length;
      expect(params).toBe(launch.args.length);
    }
  });

  it('the default policy keeps the decoders in bf16 (their attention GEMMs are not quantized), and a policy can still quantize them', () => {
    const g = tiny[0].graph;
    expect(g.nodes.filter((n) => n.op === 'QLinear')).toHaveLength(0);
    expect(g.nodes.filter((n) => n.op === 'Linear').length).toBeGreaterThan(0);
    const forced = runPipeline(inferTypes(importOnnx(join(tinyDir('flux2_vae_decoder'), 'model.onnx')).graph), {
      passes: pipelineFor(insertQuantize({ ...defaultPolicy('fp8'), quantize: ['*'] })),
    }).graph;
    expect(forced.nodes.filter((n) => n.op === 'QLinear').length).toBeGreaterThan(0);
  });

  it('renders purely: the same nodes give the same kernels', () => {
    const names = (g: Graph) => vaeNodes(g).map((n) => vaeLaunch(g, n)!.kernel.name);
    const again = optimise(join(tinyDir('flux2_vae_decoder'), 'model.onnx'));
    expect(names(again)).toEqual(names(tiny[0].graph));
    expect(new Set(names(again)).size).toBeLessThan(names(again).length); // repeated blocks share kernels
  });
});

describe('descriptor errors', () => {
  it('a conv on fp16 activations is a one-line error naming the kernel', () => {
    const g = applyPass(lowerConv, buildGraph({
      inputs: { x: ['float16', [1, 8, 4, 8]] }, constants: { w: randomTensor([4, 8, 3, 3], 1, 'float16') },
      nodes: [['Conv', ['x', 'w'], ['y'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] }]], outputs: ['y'],
    })).after.graph;
    const node = g.nodes.find((n) => n.op === 'FusedConv')!;
    expect(() => convDescriptor(g, node)).toThrow(/FusedConv kernel -> y: expected bf16 or fp32 operands, found float16 'x'/);
  });

  it('a norm whose tail reads a full-size tensor is a one-line error naming it', () => {
    const g = applyPass(fuseNorms, buildGraph({
      inputs: { x: ['float32', [1, 8, 4, 4]], u: ['float32', [1, 8, 4, 4]] },
      constants: { axes: ints([1]), eps: floats([1e-12], []), g: randomTensor([8, 1, 1], 2) },
      nodes: [['ReduceL2', ['x', 'axes'], ['n'], { keepdims: 1 }], ['Clip', ['n', 'eps'], ['c']], ['Div', ['x', 'c'], ['d']], ['Mul', ['d', 'g'], ['y']], ['Add', ['y', 'u'], ['z']]],
      outputs: ['z'],
    })).after.graph;
    const fused = g.nodes.find((n) => n.attrs.kernel === 'channel-norm')!;
    // Forge the Mul's operand into the full-size input u (fuse-norms never builds this).
    const body = { ...fused.body!, inputs: [...fused.body!.inputs, 'u'], nodes: fused.body!.nodes.map((b) => (b.op === 'Mul' ? { ...b, inputs: [b.inputs[0], 'u'] } : b)) };
    const forged: Node = { ...fused, inputs: [...fused.inputs, 'u'], body };
    expect(() => normDescriptor(g, forged)).toThrow(/channel-norm kernel -> y: expected tail operands that are scalars or per-channel vectors, found 'u' \[1,8,4,4\]/);
  });
});

const full = ['flux2_vae_decoder', 'qwen_image_vae_decoder'].map((m) => optimise(fullModelPath(m)));

describe('descriptors of the full-size decoders (1024x1024)', () => {
  const find = (g: Graph, out: string) => g.nodes.find((n) => n.outputs[0] === out)!;

  it('Flux.2: the upsampling conv folds the 2x, conv_out tiles 16 channels, the shortcut is 1x1', () => {
    const [flux] = full;
    // The warpgroup tile: 64 channels, 7 rows of pitch 66 (64 + halo) = 2 x 232 positions, 448 kept.
    expect(convDescriptor(flux, find(flux, 'conv2d_12'))).toMatchObject({ ci: 512, co: 512, hs: 128, ws: 128, up: 2, ho: 256, wo: 256, kh: 3, pt: 1, pl: 1, xType: '__nv_bfloat16', wg: { bm: 64, wgm: 1, nwg: 232, th: 7, tw: 64, pws: 66, pxs: 600 } });
    const out = convDescriptor(flux, find(flux, 'sample'));
    expect(out).toMatchObject({ co: 3, ho: 1024, tile: { bm: 16, th: 8, tw: 64 } });
    expect(out.wg).toBeUndefined(); // 3 output channels: the mma.sync kernel
    expect(convDescriptor(flux, find(flux, 'conv2d_22'))).toMatchObject({ ci: 512, co: 256, kh: 1, kw: 1, pt: 0, pl: 0, wg: { bm: 128, wgm: 2, nwg: 256, th: 4, tw: 64, pws: 64 } });
  });

  it('Flux.2: GroupNorm(32) with its affine and SiLU', () => {
    const [flux] = full;
    const d = normDescriptor(flux, find(flux, 'silu'));
    expect(d).toMatchObject({ kind: 'group-norm', n: 1, c: 512, s: 128 * 128, groups: 32, x: 0 });
    expect(d.eps).toBeCloseTo(1e-6, 12);
    expect(d.program.map((i) => i.op)).toEqual(['Mul', 'Add', 'Silu']);
    expect(d.operands.map((o) => o.role)).toEqual(['x', 'group', 'group', 'channel', 'channel']);
  });

  it("Qwen-Image: 3-D convs as 2-D, the RMS norm reads the conv's bf16 output, the 3-channel conv_out", () => {
    const [, qwen] = full;
    const norm = qwen.nodes.find((n) => n.attrs.kernel === 'channel-norm')!;
    const d = normDescriptor(qwen, norm);
    expect(d).toMatchObject({ kind: 'channel-norm', c: 384, s: 128 * 128 });
    expect(d.operands[d.x].type).toBe('__nv_bfloat16');
    expect(d.program.map((i) => i.op)).toEqual(['Cast', 'Mul', 'Mul', 'Add', 'Silu']);
    const convs = qwen.nodes.filter((n) => n.op === 'FusedConv').map((n) => convDescriptor(qwen, n));
    expect(convs.every((c) => c.kh === c.kw)).toBe(true);
    expect(convs.filter((c) => c.up === 2)).toHaveLength(3);
    expect(convs.at(-1)).toMatchObject({ ci: 96, co: 3, ho: 1024, tile: { bm: 16 } });
    // 192 and 96 channels: 64-row tiles whose two warpgroups split 464 positions (7 rows).
    expect(convs.find((c) => c.co === 192 && c.ci === 192)?.wg).toMatchObject({ bm: 64, wgm: 1, nwg: 232, th: 7 });
    expect(convs.find((c) => c.co === 96 && c.ci === 96)?.wg).toMatchObject({ bm: 64, wgm: 1, nwg: 232, th: 7 });
  });

  it('warpgroup tiles: every kept position and every tap read lies inside the tile, and the operands fit shared memory', () => {
    for (const g of full) for (const n of g.nodes.filter((x) => x.op === 'FusedConv')) {
      const d = convDescriptor(g, n);
      if (!d.wg) { expect(d.co < 64 || d.xType !== '__nv_bfloat16', `${n.outputs[0]}`).toBe(true); continue; }
      const { bm, wgm, nwg, th, tw, pws, pxs } = d.wg;
      const ntot = nwg * (2 / wgm);
      expect(bm).toBe(64 * wgm);
      expect(nwg % 8 === 0 && nwg <= 256).toBe(true);
      expect(pws).toBe(tw + d.kw - 1);
      expect(th * pws).toBeLessThanOrEqual(ntot); // kept positions are computed
      expect(pxs).toBeGreaterThanOrEqual(ntot + (d.kh - 1) * pws + d.kw - 1); // the last tap's last read
      expect((th + d.kh - 1) * pws).toBeLessThanOrEqual(pxs); // the stored tile
      expect(renderConv(d).sharedBytes).toBeLessThanOrEqual(227 * 1024);
    }
  });
});

describe('nvcc build of the VAE kernels', () => {
  const kernels = new Map<string, RenderedKernel>();
  for (const g of tiny.map((t) => t.graph)) for (const n of vaeNodes(g)) { const k = vaeLaunch(g, n)!.kernel; kernels.set(k.name, k); }
  // Full size: one conv per tile configuration (output-channel tile x kernel size x upsampling), every norm.
  const configs = new Set<string>();
  for (const g of full) for (const n of vaeNodes(g)) {
    if (n.op === 'FusedConv') {
      const d = convDescriptor(g, n);
      const key = `${d.wg ? `wg${d.wg.bm}` : d.tile.bm}/${d.kh}/${d.up}`;
      if (configs.has(key)) continue;
      configs.add(key);
      const k = renderConv(d);
      kernels.set(k.name, k);
      // The 128-row warpgroup split of a 3x3 conv (bench/gpu/conv-variants.ts) builds too.
      if (d.wg && d.kh === 3 && !configs.has('wg128/3')) {
        configs.add('wg128/3');
        const k128 = renderConv({ ...d, wg: wgTile(d, { bm: 128 })! });
        kernels.set(k128.name, k128);
      }
    } else {
      const k = renderNorm(normDescriptor(g, n));
      kernels.set(k.name, k);
    }
  }

  it.each(['h100', 'b200'] as const)('builds for %s, every kernel present, no spill in a hot one', async (target) => {
    const list = [...kernels.values()];
    const units = [
      { name: `vae_conv_${target}`, source: renderUnit(list.filter((k) => k.name.startsWith('conv_'))), hot: false },
      { name: `vae_norm_${target}`, source: renderUnit(list.filter((k) => !k.name.startsWith('conv_'))), hot: false },
    ];
    const report = await buildKernels(units, { target, cacheDir: mkdtempSync(join(tmpdir(), 'kcache-')) });
    const functions = new Map(report.units.flatMap((u) => u.functions.map((f) => [f.name, f])));
    for (const k of list) {
      const f = functions.get(k.name);
      expect(f, k.name).toBeDefined();
      if (k.hot) expect([k.name, f!.spillStoreBytes + f!.spillLoadBytes]).toEqual([k.name, 0]);
      expect(k.sharedBytes).toBeLessThanOrEqual(227 * 1024);
    }
    expect(list.filter((k) => k.hot && k.name.startsWith('conv_')).length).toBeGreaterThanOrEqual(5);
    // sm_90a: the warpgroup kernels issue wgmma, which ptxas keeps asynchronous (it warns when it serialises them).
    const wgKernels = list.filter((k) => k.source.includes('wgmma.mma_async'));
    expect(wgKernels.length).toBeGreaterThanOrEqual(4);
    expect(report.units.flatMap((u) => u.warnings).filter((w) => /wgmma/i.test(w))).toEqual([]);
  });
});
