/**
 * The per-op CUDA snippets of the element-wise templates: one small expression per op, in the
 * kernel's compute type T (float, or double where the graph computes in float64). Row reductions
 * (LayerNorm, RMSNorm, Softmax, Quantize) are written by the row template itself; RoPE's partner
 * element is supplied by the template as `partner`.
 */
import { fail } from '../errors.ts';
import type { CudaType, EwInstr } from './elementwise.ts';

type Snippet = (a: string[], attrs: EwInstr['attrs']) => string;

const SNIPPETS: Record<string, Snippet> = {
  Identity: ([a]) => `(${a})`,
  Add: ([a, b]) => `(${a} + ${b})`,
  Sub: ([a, b]) => `(${a} - ${b})`,
  Mul: ([a, b]) => `(${a} * ${b})`,
  Div: ([a, b]) => `(${a} / ${b})`,
  Pow: ([a, b]) => `dc_pow(${a}, ${b})`,
  Neg: ([a]) => `(-${a})`,
  Abs: ([a]) => `fabs(${a})`,
  Sqrt: ([a]) => `sqrt(${a})`,
  Reciprocal: ([a]) => `(T(1) / ${a})`,
  Exp: ([a]) => `exp(${a})`,
  Log: ([a]) => `log(${a})`,
  Sin: ([a]) => `sin(${a})`,
  Cos: ([a]) => `cos(${a})`,
  Tanh: ([a]) => `tanh(${a})`,
  Sigmoid: ([a]) => `dc_sigmoid(${a})`,
  Relu: ([a]) => `(${a} > T(0) ? ${a} : T(0))`,
  Silu: ([a]) => `(${a} * dc_sigmoid(${a}))`,
  Gelu: ([a], at) => (at.approximate === 'tanh' ? `dc_gelu_tanh(${a})` : `dc_gelu_erf(${a})`),
  Modulate: ([x, s, t]) => `(${x} * (T(1) + ${s}) + ${t})`,
  Where: ([c, a, b]) => `(${c} != T(0) ? ${a} : ${b})`,
  Clip: ([x, lo, hi]) => `dc_clip(${x}, ${lo || '-INFINITY'}, ${hi || 'INFINITY'})`,
  Max: (a) => a.reduce((x, y) => `dc_max(${x}, ${y})`),
  Min: (a) => a.reduce((x, y) => `dc_min(${x}, ${y})`),
  IsNaN: ([a]) => `T(isnan(${a}) ? 1 : 0)`,
  Not: ([a]) => `T(${a} == T(0) ? 1 : 0)`,
  And: ([a, b]) => `T((${a} != T(0)) && (${b} != T(0)) ? 1 : 0)`,
  Or: ([a, b]) => `T((${a} != T(0)) || (${b} != T(0)) ? 1 : 0)`,
  Equal: ([a, b]) => `T(${a} == ${b} ? 1 : 0)`,
  Greater: ([a, b]) => `T(${a} > ${b} ? 1 : 0)`,
  GreaterOrEqual: ([a, b]) => `T(${a} >= ${b} ? 1 : 0)`,
  Less: ([a, b]) => `T(${a} < ${b} ? 1 : 0)`,
  LessOrEqual: ([a, b]) => `T(${a} <= ${b} ? 1 : 0)`,
  Cast: ([a], at) => castSnippet(a, at.to as CudaType),
};

/** A Cast inside a kernel rounds the value as storing it in the target type would. */
function castSnippet(a: string, to: CudaType): string {
  switch (to) {
    case 'bf16': return `dc_round_bf16(${a})`;
    case 'half': return `dc_round_half(${a})`;
    case 'int64': case 'int32': return `T((long long)(${a}))`;
    case 'bool': return `T(${a} != T(0) ? 1 : 0)`;
    case 'fp8e4m3': return `dc_round_e4m3(${a})`;
    default: return `T(${a})`;
  }
}

export function snippet(instr: EwInstr, args: string[]): string {
  const s = SNIPPETS[instr.op];
  if (!s) fail(`element-wise kernel`, 'an op with a CUDA snippet', instr.op);
  return s(args, instr.attrs);
}

export const hasSnippet = (op: string) => op in SNIPPETS;
