/**
 * Latent layouts shared by Flux.2 and Qwen-Image (batch 1; arrays are C-order Float32Arrays).
 *
 *   spatial   [C, H, W]        VAE latents (Qwen adds a frame axis of 1, same memory order)
 *   patched   [4C, h, w]       h = H/2, w = W/2; channel c*4 + dy*2 + dx = spatial[c, 2y+dy, 2x+dx]
 *   tokens    [h*w, K]         token y*w + x, row = the K channels at grid (y, x)
 *
 * Flux.2 draws its noise already patched ([128, h, w]) and packs with `toTokens`; it decodes with
 * `fromTokens` then `unpatchify`. Qwen-Image packs spatial noise with `patchify` + `toTokens`
 * (= diffusers' _pack_latents) and unpacks with the inverse. All four are pure permutations.
 */

export interface Grid { channels: number; height: number; width: number }

/** [C, h, w] -> [h*w, C] */
export function toTokens(x: Float32Array, g: Grid): Float32Array {
  const { channels: C, height: h, width: w } = g;
  check(x, C * h * w, 'toTokens');
  return transpose(x, C, h * w);
}

/** [h*w, C] -> [C, h, w] */
export function fromTokens(x: Float32Array, g: Grid): Float32Array {
  const { channels: C, height: h, width: w } = g;
  check(x, C * h * w, 'fromTokens');
  return transpose(x, h * w, C);
}

/**
 * [rows, cols] -> [cols, rows], in square tiles, so that neither side is walked a channel count apart
 * for long (Flux.2's 128 x 4096 latents on 2 AMD EPYC cores, median of 15: toTokens 1.65 -> 1.41 ms,
 * and Flux.2's whole VAE input, fromTokens with the unpatchify, 2.16 -> 1.37 ms against the plain
 * loops; bench/RESULTS.md "Session 36").
 */
function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const T = 16, out = new Float32Array(x.length);
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) for (let c = c0, i = r * cols + c0; c < c1; c++, i++) out[c * rows + r] = x[i];
    }
  }
  return out;
}

/** [C, 2h, 2w] -> [4C, h, w]; `g` describes the spatial input. */
export function patchify(x: Float32Array, g: Grid): Float32Array {
  const { channels: C, height: H, width: W } = g;
  check(x, C * H * W, 'patchify');
  if (H % 2 || W % 2) throw new Error(`patchify: latent ${H}x${W} is not a multiple of 2`);
  const h = H / 2, w = W / 2;
  const out = new Float32Array(x.length);
  for (let c = 0; c < C; c++) for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) {
    const oc = c * 4 + dy * 2 + dx;
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
      out[(oc * h + y) * w + xx] = x[(c * H + 2 * y + dy) * W + 2 * xx + dx];
    }
  }
  return out;
}

/** [4C, h, w] -> [C, 2h, 2w]; `g` describes the spatial output. */
export function unpatchify(x: Float32Array, g: Grid): Float32Array {
  const { channels: C, height: H, width: W } = g;
  check(x, C * H * W, 'unpatchify');
  const h = H / 2, w = W / 2;
  const out = new Float32Array(x.length);
  for (let c = 0; c < C; c++) for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) {
    const ic = c * 4 + dy * 2 + dx;
    for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
      out[(c * H + 2 * y + dy) * W + 2 * xx + dx] = x[(ic * h + y) * w + xx];
    }
  }
  return out;
}

function check(x: Float32Array, n: number, what: string): void {
  if (x.length !== n) throw new Error(`${what}: expected ${n} values, found ${x.length}`);
}
