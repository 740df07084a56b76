/**
 * The VAE decoders' convolution shapes for the PyTorch baseline (bench/gpu/conv_vae.py), and the
 * comparison table of our kernels (harness timings) against it.
 *
 *   npx tsx bench/gpu/conv-shapes.ts shapes OUT.json     every distinct FusedConv of the full-size
 *                                                        Flux.2 and Qwen-Image VAE decoders (1024x1024),
 *                                                        keyed by our kernel's name
 *   npx tsx bench/gpu/conv-shapes.ts report SHAPES.json HARNESS_LOG TORCH.json
 *                                                        markdown: µs and TFLOP/s, ours vs cuDNN
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { convDescriptor, renderConv } from '../../compiler/codegen/conv.ts';
import { inferTypes } from '../../compiler/ir/infer.ts';
import { importOnnx } from '../../compiler/onnx/import.ts';
import { pipelineFor, runPipeline } from '../../passes/pipeline.ts';
import { insertQuantize } from '../../passes/quantize/insert.ts';
import { defaultPolicy } from '../../passes/quantize/policy.ts';
import { vaeFull } from '../../test/gpu/vae-cases.ts';

interface Shape { kernel: string; model: string; ci: number; co: number; hs: number; ws: number; up: number; kh: number; kw: number; pt: number; pl: number; flops: number; count: number }

function shapes(out: string): void {
  const byKernel = new Map<string, Shape>();
  for (const file of vaeFull()) {
    const graph = runPipeline(inferTypes(importOnnx(file).graph), { passes: pipelineFor(insertQuantize(defaultPolicy('fp8'))) }).graph;
    for (const node of graph.nodes.filter((n) => n.op === 'FusedConv')) {
      const d = convDescriptor(graph, node);
      const kernel = renderConv(d).name;
      const known = byKernel.get(kernel);
      if (known) { known.count++; continue; }
      byKernel.set(kernel, { kernel, model: basename(dirname(file)), ci: d.ci, co: d.co, hs: d.hs, ws: d.ws, up: d.up, kh: d.kh, kw: d.kw, pt: d.pt, pl: d.pl, flops: 2 * d.n * d.co * d.ho * d.wo * d.ci * d.kh * d.kw, count: 1 });
    }
  }
  writeFileSync(out, JSON.stringify([...byKernel.values()], null, 1));
  console.log(`${byKernel.size} distinct convolutions -> ${out}`);
}

function report(shapesFile: string, log: string, torchFile: string): void {
  const list: Shape[] = JSON.parse(readFileSync(shapesFile, 'utf8'));
  const ours = new Map(readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('time ')).map((l) => l.split(' ')).map(([, k, us]) => [k, Number(us)]));
  const torch = new Map((JSON.parse(readFileSync(torchFile, 'utf8')).convs as { kernel: string; nchw: number; nhwc: number; up_nchw?: number; up_nhwc?: number }[]).map((r) => [r.kernel, r]));
  const tf = (flops: number, us: number | undefined) => (us ? (flops / us / 1e6).toFixed(0) : '-');
  console.log('| model | conv (Ci→Co, HxW, k, up) | × | ours µs | ours TFLOP/s | cuDNN NCHW TFLOP/s | cuDNN NHWC TFLOP/s | PyTorch upsample+conv µs (best layout) |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  let oursTotal = 0, torchTotal = 0;
  for (const s of list.sort((a, b) => b.flops * b.count - a.flops * a.count)) {
    const t = torch.get(s.kernel), us = ours.get(s.kernel);
    const best = t ? Math.min(t.nchw, t.nhwc) : undefined;
    const seq = t?.up_nchw !== undefined ? Math.min(t.up_nchw, t.up_nhwc!) : best;
    if (us && seq) { oursTotal += us * s.count; torchTotal += seq * s.count; }
    console.log(`| ${s.model.replace('_vae_decoder', '')} | ${s.ci}→${s.co}, ${s.hs * s.up}², ${s.kh}x${s.kw}${s.up > 1 ? `, up ${s.up}` : ''} | ${s.count} | ${us?.toFixed(1) ?? '-'} | ${tf(s.flops, us)} | ${tf(s.flops, t?.nchw)} | ${tf(s.flops, t?.nhwc)} | ${seq?.toFixed(1) ?? '-'} |`);
  }
  console.log(`\nall convolutions of both decoders (each shape x its count): ours ${(oursTotal / 1e3).toFixed(2)} ms, PyTorch (best layout per shape) ${(torchTotal / 1e3).toFixed(2)} ms`);
}

const [cmd, a, b, c] = process.argv.slice(2);
if (cmd === 'shapes') shapes(a);
else if (cmd === 'report') report(a, b, c);
else console.log('usage: conv-shapes.ts shapes OUT.json | report SHAPES.json HARNESS_LOG TORCH.json');
