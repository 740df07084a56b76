// How far an 8-bit RGB image is from a reference of the same size: the largest level difference,
// how many values differ, and the PSNR. No vitest here: GPU-host scripts (test/gpu) use it too.

export interface RgbAgreement { maxDiff: number; differing: number; psnr: number }

export function rgbAgreement(got: Uint8Array, want: Uint8Array): RgbAgreement {
  if (got.length !== want.length) throw new Error(`rgbAgreement: ${got.length} values against ${want.length}`);
  let maxDiff = 0, differing = 0, squares = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d) differing++;
    if (d > maxDiff) maxDiff = d;
    squares += d * d;
  }
  const mse = squares / want.length;
  return { maxDiff, differing, psnr: mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse) };
}
