/**
 * runtime/gpu/nvml.ts off the GPU: no NVML library gives no energy reader (the step timing says
 * "not measured" rather than failing), and the joules a run and mean watts of a timed window come
 * from the counter's readings around it.
 */
import { describe, expect, it } from 'vitest';
import { type Nvml, energyOver, openNvml } from '../../runtime/gpu/nvml.ts';

describe('NVML energy', () => {
  it('is absent where the library does not open', () => {
    expect(openNvml('0000:00:00.0', 'libnvidia-ml-not-here.so.1')).toBeUndefined();
    expect(energyOver(undefined, 3, () => 42)).toEqual({ result: 42 });
  });

  it('divides the counter\'s joules over the window by the runs, and by the seconds for the mean power', () => {
    let mj = 1_000_000;
    const nvml: Nvml = { energyMj: () => mj, powerW: () => 0, smClockMHz: () => 1395 };
    const started = performance.now();
    const { result, energy } = energyOver(nvml, 4, () => {
      while (performance.now() - started < 50); // a 50 ms window
      mj += 28_000; // 28 J over it
      return 'ran';
    });
    const seconds = (performance.now() - started) / 1000;
    expect(result).toBe('ran');
    expect(energy!.joulesPerRun).toBe(7);
    expect(energy!.smClockMHz).toBe(1395);
    // 28 J over a little more than 0.05 s (the window as energyOver timed it, inside this one).
    expect(energy!.meanWatts).toBeGreaterThanOrEqual(28 / seconds);
    expect(energy!.meanWatts).toBeLessThanOrEqual(28 / 0.05);
  });
});
