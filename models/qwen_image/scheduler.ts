/**
 * Qwen-Image's timestep schedule (PIPELINE.md §3): flow-matching Euler, exponential time shift
 * with mu linear in the number of image tokens L (diffusers' calculate_shift with the Qwen/Qwen-Image
 * scheduler config: base 256 -> 0.5, max 8192 -> 0.9, not clamped, independent of the steps),
 * then the terminal stretch so the last sigma is shift_terminal = 0.02.
 */
import { type Schedule, flowMatchSchedule } from '../../runtime/pipeline/flow_match.ts';

export const SCHEDULER_CONFIG = { baseImageSeqLen: 256, maxImageSeqLen: 8192, baseShift: 0.5, maxShift: 0.9, shiftTerminal: 0.02 };

export function calculateShift(imageSeqLen: number, c = SCHEDULER_CONFIG): number {
  const m = (c.maxShift - c.baseShift) / (c.maxImageSeqLen - c.baseImageSeqLen);
  const b = c.baseShift - m * c.baseImageSeqLen;
  return imageSeqLen * m + b;
}

export function qwenSchedule(steps: number, imageSeqLen: number): Schedule {
  return flowMatchSchedule(steps, { mu: calculateShift(imageSeqLen), shiftTerminal: SCHEDULER_CONFIG.shiftTerminal });
}
