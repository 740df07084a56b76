/**
 * canonicalize: rewrites each exporter's spelling of a common building block into one canonical op,
 * so later passes (fusion, quantization, codegen) match one form. Rules are in this folder.
 */
import { rulePass } from './rule.ts';
import { rmsNormRule } from './rms-norm.ts';
import { ropeRule } from './rope.ts';

export const canonicalize = rulePass('canonicalize', [rmsNormRule, ropeRule]);
