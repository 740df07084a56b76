/**
 * The registry of IR ops: every op the compiler knows, with its inference, reference
 * implementation and FLOP count. An op missing here is "unknown" to every stage, which reports it
 * by name and node. Later passes add their fused ops (FusedAttention, fused kernels) here too.
 */
import type { Node } from '../ir/graph.ts';
import { attentionOps } from './attention.ts';
import { convOps } from './conv.ts';
import { elementwiseOps } from './elementwise.ts';
import { fusedOps } from './fused.ts';
import { fusedKernelOps } from './fused-kernel.ts';
import { quantOps } from './quant.ts';
import { linalgOps } from './linalg.ts';
import { normOps } from './norm.ts';
import { packedAttentionOps } from './packed-attention.ts';
import type { OpDef } from './op.ts';
import { resizeOps } from './resize.ts';
import { shapeOps } from './shape.ts';

const DEFAULT_DOMAIN: Readonly<Record<string, OpDef>> = {
  ...elementwiseOps, ...shapeOps, ...linalgOps, ...normOps, ...attentionOps, ...resizeOps,
};

/** The compiler's own ops (fusions, canonical forms): domain "dc". */
const DC_DOMAIN: Readonly<Record<string, OpDef>> = { ...fusedOps, ...fusedKernelOps, ...quantOps, ...packedAttentionOps, ...convOps };

const DOMAINS: Readonly<Record<string, Readonly<Record<string, OpDef>>>> = { '': DEFAULT_DOMAIN, dc: DC_DOMAIN };

export function lookupOp(node: Node): OpDef | undefined {
  const ops = DOMAINS[node.domain];
  return ops && Object.hasOwn(ops, node.op) ? ops[node.op] : undefined;
}

/** Every ONNX (default-domain) op the compiler knows. */
export const knownOps = (): string[] => Object.keys(DEFAULT_DOMAIN).sort();
