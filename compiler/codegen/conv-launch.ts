/**
 * The kernel plan's entry for the VAE decoders' kernels: a dc.FusedConv (conv.ts) or a norm
 * FusedKernel (norm.ts) becomes one rendered kernel and its arguments in kernel-parameter order
 * (value names; plan.ts resolves where they live). Anything else: undefined.
 */
import type { Graph, Node } from '../ir/graph.ts';
import { convDescriptor, renderConv } from './conv.ts';
import { isNormKernel, normDescriptor, renderNorm } from './norm.ts';
import type { RenderedKernel } from './render.ts';

export function vaeLaunch(graph: Graph, node: Node): { kernel: RenderedKernel; args: string[] } | undefined {
  // FusedConv parameters: x, w, [bias], y. Norm kernels: every node input in order, then the output.
  if (node.domain === 'dc' && node.op === 'FusedConv') return { kernel: renderConv(convDescriptor(graph, node)), args: [...node.inputs.filter(Boolean), node.outputs[0]] };
  if (isNormKernel(node)) return { kernel: renderNorm(normDescriptor(graph, node)), args: [...node.inputs, node.outputs[0]] };
  return undefined;
}
