/**
 * runtime/gpu/nvml.ts off the GPU: no NVML library gives no energy reader (the step timing says
 * "not measured" rather than failing), and the joules a run and mean watts of a timed window come
 * from the counter's readings around it.
 */
import { describe, expect, it } from 'vitest';
import { type Nvml, energyReader, energyWindow, openNvml } from '../../runtime/gpu/nvml.ts';

describe('NVML energy', () => {
  it('is absent where the library does not open', () => {
    expect(openNvml('0000:00:00.0', 'libnvidia-ml-not-here.so.1')).toBeUndefined();
    expect(energyWindow(undefined)(3)).toBeUndefined();
    expect(energyReader(undefined)).toBeUndefined(); // no board (the CPU executor)
    expect(energyReader('0000:00:00.0', () => undefined)).toBeUndefined(); // no NVML
  });

  it('reads the counter in joules for the server', () => {
    const buses: string[] = [];
    const read = energyReader('00000000:19:00.0', (bus) => { buses.push(bus); return { energyMj: () => 2_500_250, smClockMHz: () => 0 }; });
    expect(buses).toEqual(['00000000:19:00.0']);
    expect(read!()).toBe(2500.25);
  });

  it('divides the counter\'s joules over the window by the runs, and by the seconds for the mean power', () => {
    let mj = 1_000_000;
    const nvml: Nvml = { energyMj: () => mj, smClockMHz: () => 1395 };
    const before = performance.now();
    const close = energyWindow(nvml);
    const opened = performance.now();
    while (performance.now() - opened < 50); // a window of at least 50 ms
    mj += 28_000; // 28 J over it
    const energy = close(4);
    const seconds = (performance.now() - before) / 1000; // at least the window
    expect(energy!.joulesPerRun).toBe(7);
    expect(energy!.smClockMHz).toBe(1395);
    // 28 J over the window: at least 50 ms, at most what was timed around it.
    expect(energy!.meanWatts).toBeGreaterThanOrEqual(28 / seconds);
    expect(energy!.meanWatts).toBeLessThanOrEqual(28 / 0.05);
  });
});
