/**
 * dc.FusedConv(x, w, [b]): one convolution kernel (passes/lower-conv.ts makes it), meaning exactly
 * its body, like dc.FusedKernel: inference and the reference run the body with the ordinary ops.
 * The body is always
 *
 *   w_oihw = Transpose(w, perm=[0,3,1,2])     w arrives as [Co, kh, kw, Ci] (OHWI), the layout the
 *                                             kernel reads (prepared once, at load time)
 *   [xu = Resize(x, scales)]                  an optional nearest upsampling the kernel folds into
 *                                             its input indexing
 *   y = Conv(xu | x, w_oihw, [b])             2-D, stride 1, group 1
 *
 * A separate op (not a FusedKernel) because a convolution reads neighbours: the memory planner
 * must never write its output over its input.
 */
import { fusedKernelOps } from './fused-kernel.ts';
import type { OpDef } from './op.ts';

const body = fusedKernelOps.FusedKernel;

const fusedConv: OpDef = {
  infer: (c) => body.infer(c),
  exec: (ins, node) => body.exec(ins, node),
  // Multiply-adds: every output element reads Ci x kh x kw inputs (w is [Co, kh, kw, Ci]).
  flops: (_node, [, w], [y]) => 2 * y.shape.reduce((a, b) => a * b, 1) * w.shape.slice(1).reduce((a, b) => a * b, 1),
};

export const convOps: Record<string, OpDef> = { FusedConv: fusedConv };
