/**
 * canonicalize: rewrites each exporter's spelling of a common building block into one canonical op,
 * so later passes (fusion, quantization, codegen) match one form. Rules are in this folder; the
 * order matters only where patterns nest (SwiGLU and GELU before the SiLU inside them).
 */
import { geluTanhRule, siluRule, swigluRule } from './activations.ts';
import { linearRule } from './linear.ts';
import { modulateRule } from './modulate.ts';
import { rmsNormRule } from './rms-norm.ts';
import { ropeRule } from './rope.ts';
import { rulePass } from './rule.ts';

export const canonicalize = rulePass('canonicalize', [linearRule, rmsNormRule, ropeRule, swigluRule, geluTanhRule, siluRule, modulateRule]);

/** SwiGLU again once fuse-linear has merged gate and up projections into one GEMM + Split. */
export const canonicalizeSwiglu = rulePass('canonicalize-swiglu', [swigluRule]);
