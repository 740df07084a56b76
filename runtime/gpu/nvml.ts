/**
 * The board's energy counter and SM clock from NVML (libnvidia-ml.so.1 through koffi, no
 * native build), for the device the runtime runs on (matched by PCI bus id, so the two libraries'
 * device orders need not agree). Timings report joules a run beside milliseconds: an H100 at its 700 W
 * cap runs the transformers' steps power-bound (bench/RESULTS.md "Session 7"), so a change must save
 * energy to save time there. openNvml() gives undefined where the library, the device or the energy
 * counter is missing (no NVIDIA driver; a board without the counter).
 */
import { loadLibrary } from './cuda.ts';

export interface Nvml {
  /** Energy the board has used since the driver loaded, in millijoules. */
  energyMj(): number;
  /** SM clock now, in MHz. */
  smClockMHz(): number;
}

const NVML_CLOCK_SM = 1;

export function openNvml(pciBusId: string, library = 'libnvidia-ml.so.1'): Nvml | undefined {
  const opened = loadLibrary([library]);
  if ('error' in opened) return undefined;
  const { lib } = opened;
  const init = lib.func('int nvmlInit_v2()');
  const byBus = lib.func('int nvmlDeviceGetHandleByPciBusId_v2(const char *bus, _Out_ void **device)');
  const energy = lib.func('int nvmlDeviceGetTotalEnergyConsumption(void *device, _Out_ uint64_t *mj)');
  const clock = lib.func('int nvmlDeviceGetClockInfo(void *device, int type, _Out_ unsigned int *mhz)');
  const device: unknown[] = [null];
  if (init() !== 0 || byBus(pciBusId, device) !== 0) return undefined;
  const read = (fn: (...a: unknown[]) => unknown, ...args: unknown[]) => {
    const out: unknown[] = [0];
    return fn(device[0], ...args, out) === 0 ? Number(out[0]) : Number.NaN;
  };
  if (!Number.isFinite(read(energy))) return undefined;
  return { energyMj: () => read(energy), smClockMHz: () => read(clock, NVML_CLOCK_SM) };
}

/** What a window of runs cost the board: joules a run, mean watts, the SM clock at its end. */
export interface Energy { joulesPerRun: number; meanWatts: number; smClockMHz: number }

/**
 * Opens a window on the energy counter now; the function it returns closes it after `runs` runs and
 * gives their joules a run (undefined without NVML).
 */
export function energyWindow(nvml: Nvml | undefined): (runs: number) => Energy | undefined {
  if (!nvml) return () => undefined;
  const e0 = nvml.energyMj(), t0 = performance.now();
  return (runs) => {
    const clock = nvml.smClockMHz(); // at the window's end, while the card is still at its working clock
    const joules = (nvml.energyMj() - e0) / 1000, seconds = (performance.now() - t0) / 1000;
    return { joulesPerRun: joules / runs, meanWatts: joules / seconds, smClockMHz: clock };
  };
}

/** A reader of the board's energy counter in joules (the server's dc_gpu_energy_joules_total); undefined without a board or NVML. */
export function energyReader(pciBusId: string | undefined, open: (bus: string) => Nvml | undefined = openNvml): (() => number) | undefined {
  const nvml = pciBusId ? open(pciBusId) : undefined;
  return nvml ? () => nvml.energyMj() / 1000 : undefined;
}
