// Relative L2 error of a result against its reference: the one measure the tests compare numerics by.
import { expect } from 'vitest';

/** ‖got − want‖ / ‖want‖ (‖got − want‖ where want is all zeros); lengths must agree. */
export function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length, 'relative L2 error: lengths').toBe(want.length);
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) { num += (got[i] - want[i]) ** 2; den += want[i] ** 2; }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
