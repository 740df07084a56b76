/**
 * The registry of IR ops: every op the compiler knows, with its inference, reference
 * implementation and FLOP count. An op missing here is "unknown" to every stage, which reports it
 * by name and node. Later passes add their fused ops (FusedAttention, fused kernels) here too.
 */
import type { Node } from '../ir/graph.ts';
import { attentionOps } from './attention.ts';
import { elementwiseOps } from './elementwise.ts';
import { linalgOps } from './linalg.ts';
import { normOps } from './norm.ts';
import type { OpDef } from './op.ts';
import { resizeOps } from './resize.ts';
import { shapeOps } from './shape.ts';

const DEFAULT_DOMAIN: Readonly<Record<string, OpDef>> = {
  ...elementwiseOps, ...shapeOps, ...linalgOps, ...normOps, ...attentionOps, ...resizeOps,
};

export function lookupOp(node: Node): OpDef | undefined {
  if (node.domain !== '') return undefined;
  return Object.hasOwn(DEFAULT_DOMAIN, node.op) ? DEFAULT_DOMAIN[node.op] : undefined;
}

export const knownOps = (): string[] => Object.keys(DEFAULT_DOMAIN).sort();
