/**
 * Flux.2's timestep schedule (PIPELINE.md §3): flow-matching Euler with an exponential time
 * shift whose mu is BFL's empirical fit in the number of image tokens L and steps N:
 *   L > 4300: mu = a2*L + b2; else mu is the line through the "10 steps" (a1*L + b1) and the
 *   "200 steps" (a2*L + b2) fits, evaluated at N. float64, no terminal stretch.
 */
import { type Schedule, flowMatchSchedule } from '../../runtime/pipeline/flow_match.ts';

const A1 = 8.73809524e-5, B1 = 1.89833333, A2 = 0.00016927, B2 = 0.45666666;

export function empiricalMu(imageSeqLen: number, steps: number): number {
  if (imageSeqLen > 4300) return A2 * imageSeqLen + B2;
  const m200 = A2 * imageSeqLen + B2;
  const m10 = A1 * imageSeqLen + B1;
  const a = (m200 - m10) / 190;
  const b = m200 - 200 * a;
  return a * steps + b;
}

export function flux2Schedule(steps: number, imageSeqLen: number): Schedule {
  return flowMatchSchedule(steps, { mu: empiricalMu(imageSeqLen, steps) });
}
