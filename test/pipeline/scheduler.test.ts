/**
 * Schedules against the sigma tables of models/flux2/PIPELINE.md and models/qwen_image/PIPELINE.md
 * (float32 emulations of diffusers; printed to 8 decimals there, so compared to 5e-9), the mu
 * rules, and the Euler step's float32 arithmetic.
 */
import { describe, expect, it } from 'vitest';
import { empiricalMu, flux2Schedule } from '../../models/flux2/scheduler.ts';
import { calculateShift, qwenSchedule } from '../../models/qwen_image/scheduler.ts';
import { eulerStep, linspace, timestepInput } from '../../runtime/pipeline/flow_match.ts';

const table = (s: string) => s.trim().split(/\s+/).map(Number);
function expectSigmas(got: Float32Array, want: number[]) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `sigma ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(5.1e-9);
}

const FLUX_1024_50 = table(`1.00000000 0.99730909 0.99452138 0.99163157 0.98863399 0.98552251 0.98229045 0.97893065 0.97543550 0.97179639
  0.96800464 0.96405011 0.95992219 0.95560932 0.95109868 0.94637632 0.94142699 0.93623400 0.93077892 0.92504120
  0.91899848 0.91262573 0.90589505 0.89877564 0.89123261 0.88322711 0.87471515 0.86564720 0.85596693 0.84561020
  0.83450341 0.82256204 0.80968839 0.79576892 0.78067076 0.76423740 0.74628377 0.72658855 0.70488536 0.68085086
  0.65408790 0.62410384 0.59028006 0.55182844 0.50772965 0.45664084 0.39675707 0.32559332 0.23963118 0.13371895 0`);
const FLUX_1024_28 = table(`1.00000000 0.99571049 0.99113190 0.98623419 0.98098260 0.97533751
  0.96925282 0.96267515 0.95554203 0.94778001 0.93930221 0.93000472 0.91976255 0.90842414 0.89580357 0.88167024
  0.86573476 0.84762901 0.82687742 0.80285406 0.77471912 0.74131811 0.70102006 0.65144277 0.58896393 0.50779426
  0.39807171 0.24151459 0`);
const QWEN_1024_50 = table(`1.00000000 0.98970091 0.97919148 0.96846533 0.95751566 0.94633532
  0.93491709 0.92325306 0.91133547 0.89915574 0.88670534 0.87397492 0.86095506 0.84763587 0.83400667 0.82005662
  0.80577433 0.79114771 0.77616411 0.76081049 0.74507278 0.72893631 0.71238601 0.69540554 0.67797804 0.66008556
  0.64170921 0.62282920 0.60342437 0.58347261 0.56295049 0.54183316 0.52009439 0.49770635 0.47463942 0.45086229
  0.42634165 0.40104216 0.37492591 0.34795296 0.32008022 0.29126203 0.26144940 0.23059005 0.19862771 0.16550225
  0.13114905 0.09549850 0.05847579 0.01999998 0`);
const QWEN_1328_50 = table(`1.00000000 0.99098831 0.98176795 0.97233158 0.96267152 0.95277965
  0.94264776 0.93226659 0.92162716 0.91071963 0.89953375 0.88805866 0.87628305 0.86419499 0.85178173 0.83903015
  0.82592613 0.81245488 0.79860067 0.78434718 0.76967657 0.75457036 0.73900902 0.72297144 0.70643556 0.68937778
  0.67177296 0.65359449 0.63481367 0.61540008 0.59532124 0.57454240 0.55302632 0.53073287 0.50761938 0.48363966
  0.45874405 0.43287903 0.40598696 0.37800545 0.34886676 0.31849772 0.28681874 0.25374311 0.21917635 0.18301553
  0.14514750 0.10544860 0.06378275 0.01999998 0`);

describe('Flux.2 schedule (empirical mu, no terminal stretch)', () => {
  it('mu values of PIPELINE.md', () => {
    expect(empiricalMu(4096, 50)).toBeCloseTo(2.0233511571, 9);
    expect(empiricalMu(4096, 28)).toBeCloseTo(2.1514431618, 9);
    expect(empiricalMu(256, 4)).toBeCloseTo(1.9655671614, 9);
    expect(empiricalMu(5000, 10)).toBeCloseTo(empiricalMu(5000, 200), 12); // L > 4300: independent of N
  });
  it('sigma tables: 1024x1024 at 50 and 28 steps, tiny grid at 4 steps', () => {
    expectSigmas(flux2Schedule(50, 4096).sigmas, FLUX_1024_50);
    expectSigmas(flux2Schedule(28, 4096).sigmas, FLUX_1024_28);
    expectSigmas(flux2Schedule(4, 256).sigmas, table('1.00000000 0.95539075 0.87713426 0.70411170 0'));
  });
  it('timesteps are sigma*1000 in float32, N of them; transformer input t/1000', () => {
    const s = flux2Schedule(50, 4096);
    expect(s.timesteps.length).toBe(50);
    expect(s.timesteps[0]).toBe(1000);
    expect(s.timesteps[49]).toBe(Math.fround(s.sigmas[49] * 1000));
    expect(timestepInput(s, 0)).toBe(1);
    expect(timestepInput(s, 10)).toBe(Math.fround(s.timesteps[10] / 1000));
  });
});

describe('Qwen-Image schedule (mu linear in L, shift_terminal 0.02)', () => {
  it('mu values of PIPELINE.md', () => {
    expect(calculateShift(4096)).toBeCloseTo(0.6935483871, 9);
    expect(calculateShift(6889)).toBeCloseTo(0.8343245968, 9);
    expect(calculateShift(256)).toBeCloseTo(0.5, 12);
  });
  it('sigma tables: 1024x1024 and 1328x1328 at 50 steps, tiny grid at 4 steps', () => {
    expectSigmas(qwenSchedule(50, 4096).sigmas, QWEN_1024_50);
    expectSigmas(qwenSchedule(50, 6889).sigmas, QWEN_1328_50);
    expectSigmas(qwenSchedule(4, 256).sigmas, table('1.00000000 0.74461138 0.42667347 0.01999998 0'));
  });
});

describe('flow-matching primitives', () => {
  it('linspace as NumPy (endpoint exact, N = 1)', () => {
    expect(linspace(1, 0.25, 4)).toEqual([1, 0.75, 0.5, 0.25]);
    expect(linspace(1, 1, 1)).toEqual([1]);
  });
  it('Euler step: x + f32(f32(dt) * v), down to sigma 0 at the last step', () => {
    const s = flux2Schedule(2, 256);
    const x = Float32Array.of(1, -2, 0.5), v = Float32Array.of(0.1, 0.2, -3);
    const dt = Math.fround(s.sigmas[1] - s.sigmas[0]);
    const want = Array.from(x, (xi, i) => Math.fround(xi + Math.fround(dt * v[i])));
    eulerStep(x, v, s, 0);
    expect(Array.from(x)).toEqual(want);
    expect(s.sigmas[2]).toBe(0);
    expect(() => eulerStep(x, Float32Array.of(1), s, 1)).toThrow(/velocity has 1 values/);
  });
  it('rejects a non-positive step count', () => {
    expect(() => flux2Schedule(0, 256)).toThrow(RangeError);
  });
});
