// dc_qmul (templates/preamble.cuh), the quantization multiply of the row kernels and the attention pack,
// compiled for the host with nvcc and checked against the reference's definition (compiler/quant/formats.ts
// fp8Reciprocal: fp32(x · r), r = 1 / s to 24 bits, its exponent unbounded), mirrored here in double, bit for
// bit; a sample of the host's products is then held against fp8Reciprocal itself. dc_qmul1 (the row kernels'
// form for scales that need no prescaling) must equal dc_qmul bit for bit. Random (x, amax) pairs over the
// whole float range (amax any positive float from 448·2^-149, |x| <= amax, signed zeros included; s = amax /
// 448 as the kernels compute it, dc_fp8_scale). dc_fp8_scale, the kernels' FP8 scale of an amax, is held against
// fp8Scale on edge and random amaxes, dc_s8_scale against s8Scale's definition on every float. CPU only; nothing runs on a GPU.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nvccEnv, resolveNvcc } from '../../compiler/build/nvcc.ts';
import { ROOT } from '../../compiler/paths.ts';
import { s8Scale } from '../../compiler/ops/fused.ts';
import { fp8Reciprocal, fp8Scale } from '../../compiler/quant/formats.ts';

const PROGRAM = `#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cmath>
#include "preamble.cuh"
static uint64_t st = 0x9E3779B97F4A7C15ull;
static uint64_t next() { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static float fromBits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
// fp8Reciprocal (compiler/quant/formats.ts), in double.
static double reciprocal(float s) { const double r = 1.0 / (double)s; return r < 0x1p126 ? (double)(float)r : (double)(float)(r * 0x1p-100) * 0x1p100; }
int main(int argc, char** argv) {
  const long n = atol(argv[1]), samples = atol(argv[2]);
  long differ = 0, prescaled = 0, nan = 0, differ1 = 0, differD = 0, printed = 0;
  char* out = (char*)malloc(samples * 32 + 1); size_t at = 0;
  for (long i = 0; i < n; ++i) {
    const float amax = fromBits((uint32_t)(next() % 0x7f7fe000u) + 0x00000200u); // any positive float from 448·2^-149 up (s never underflows to 0)
    const float s = dc_fp8_scale(amax);
    const uint64_t r = next();
    float x = (r % 16 == 0) ? ((r & 32) ? -0.f : 0.f) : amax * fromBits((uint32_t)(next() % 0x3f800000u) + 1u);
    if (r & 64) x = -x;
    const dc_qd_f p = dc_qprep(s);
    if (p.k != 1.f) ++prescaled;
    const float q = dc_qmul(x, p), want = (float)((double)x * reciprocal(s));
    if (q != q) ++nan;
    if (bits(q) != bits(want)) { if (differ < 3) fprintf(stderr, "x=%a s=%a: %a vs %a\\n", x, s, q, want); ++differ; }
    if (p.k == 1.f) { const float q1 = dc_qmul1(x, p); if (bits(q1) != bits(q)) ++differ1; }
    if (bits((float)dc_qmul((double)x, dc_qprep((double)s))) != bits(want)) ++differD;  // the double overload, rounded to float
    if (printed < samples && (i % 7 == 0 || p.k != 1.f)) { at += sprintf(out + at, " %08x %08x %08x", bits(x), bits(s), bits(q)); ++printed; }
  }
  printf("%ld %ld %ld %ld %ld%s\\n", differ, prescaled, nan, differ1, differD, out);
  return 0;
}
`;

const dir = mkdtempSync(join(tmpdir(), 'qdiv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dc_qmul: the quantization multiply x · fp8Reciprocal(s) (templates/preamble.cuh)', () => {
  it('gives fp32(x · r) bit for bit on 4 million random pairs, small scales scaled by 2^100; fp8Reciprocal agrees on a sample', () => {
    writeFileSync(join(dir, 'qdiv.cu'), PROGRAM);
    const exe = join(dir, 'qdiv');
    execFileSync(resolveNvcc(), ['-O2', '-std=c++17', '-Xcompiler', '-ffp-contract=off', `-I${join(ROOT, 'templates')}`, '-o', exe, join(dir, 'qdiv.cu')], { env: nvccEnv(), stdio: 'pipe' });
    const [differ, prescaled, nan, differ1, differD, ...sample] = execFileSync(exe, ['4000000', '20000'], { encoding: 'utf8' }).trim().split(' ');
    expect(Number(nan)).toBe(0);
    expect(Number(differ1)).toBe(0); // dc_qmul1, where the scale needs no prescaling: the same bits as dc_qmul
    expect(Number(prescaled)).toBeGreaterThan(100_000); // amax below ~2^-117 (4% of the exponents): x and s times 2^100
    expect(Number(differ)).toBe(0);
    expect(Number(differD)).toBe(0); // the double overload (kernels computing in double): the same product
    // The host's products against the reference's function: fp32(x · fp8Reciprocal(s)).
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    const float = (hex: string) => { u[0] = parseInt(hex, 16); return f[0]; };
    let checked = 0, wrong = 0;
    for (let i = 0; i + 2 < sample.length; i += 3) {
      f[0] = float(sample[i]) * fp8Reciprocal(float(sample[i + 1]));
      if (u[0] !== parseInt(sample[i + 2], 16)) wrong++;
      checked++;
    }
    expect(checked).toBe(20_000);
    expect(wrong).toBe(0);
  }, 120_000);
});

const SCALE_PROGRAM = `#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include "preamble.cuh"
// amaxScale (compiler/quant/formats.ts) in C: the double quotient rounded to fp32, 1 where that is not positive
// (fp8Scale over 448, s8Scale over 127).
static float mirror(float a, double codeMax) { const float q = (float)((double)a / codeMax); return q > 0.f ? q : 1.f; }
// Every float's bits: how many of scale's results differ from the mirror's over codeMax.
template <class Scale> static unsigned long long differing(Scale scale, double codeMax) {
  unsigned long long differ = 0;
  for (uint64_t u = 0; u <= 0xffffffffull; ++u) {
    float a; const uint32_t w = (uint32_t)u; memcpy(&a, &w, 4);
    const float s = scale(a), m = mirror(a, codeMax);
    if (memcmp(&s, &m, 4)) ++differ;
  }
  return differ;
}
int main(int argc, char** argv) {
  if (argc == 2 && !strcmp(argv[1], "all8")) { printf("%llu", differing([](float a) { return dc_s8_scale(a); }, 127.0)); return 0; }
  if (argc == 2 && !strcmp(argv[1], "all")) { printf("%llu", differing([](float a) { return dc_fp8_scale(a); }, 448.0)); return 0; }
  for (int i = 1; i < argc; ++i) {
    const uint32_t u = (uint32_t)strtoul(argv[i], nullptr, 16);
    float a; memcpy(&a, &u, 4);
    const float s = dc_fp8_scale(a);
    uint32_t v; memcpy(&v, &s, 4);
    printf("%08x ", v);
  }
  return 0;
}
`;

describe('dc_fp8_scale: the FP8 scale of an amax (templates/preamble.cuh)', () => {
  it('is fp8Scale (compiler/quant/formats.ts) bit for bit on every float: 1 for 0, NaN, negatives and where amax / 448 underflows, the quotient elsewhere', () => {
    writeFileSync(join(dir, 'scale.cu'), SCALE_PROGRAM);
    const exe = join(dir, 'scale');
    execFileSync(resolveNvcc(), ['-O2', '-std=c++17', '-Xcompiler', '-ffp-contract=off', `-I${join(ROOT, 'templates')}`, '-o', exe, join(dir, 'scale.cu')], { env: nvccEnv(), stdio: 'pipe' });
    // Every float: dc_fp8_scale against fp8Scale's definition written in C (the double quotient rounded to fp32).
    expect(execFileSync(exe, ['all'], { encoding: 'utf8' }).trim()).toBe('0');
    // And against fp8Scale itself: zero and -0, the smallest subnormals (amax / 448 underflows to 0 below 448·2^-150),
    // the first amaxes whose quotient is the smallest subnormal, normals, 448, the largest float, the infinities, a NaN,
    // a negative, and a spread of random bit patterns of positive floats.
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    const bits = [0x0, 0x80000000, 0x1, 0x2, 0xe0, 0xe1, 0x1c0, 0x1c1, 0x200, 0x00800000, 0x3f800000, 0x43e00000, 0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0xbf800000];
    for (let i = 0; i < 200; i++) bits.push((Math.imul(i + 1, 0x9e3779b1) >>> 0) % 0x7f800000);
    const got = execFileSync(exe, bits.map((b) => b.toString(16)), { encoding: 'utf8' }).trim().split(' ').map((h) => parseInt(h, 16));
    const want = bits.map((b) => { u[0] = b; f[0] = fp8Scale(f[0]); return u[0]; });
    expect(got).toEqual(want);
    // The edge this decides: a positive amax whose quotient underflows scales by 1 (codes 0), not by 0 (an infinite reciprocal).
    u[0] = 0xe0; expect(fp8Scale(f[0])).toBe(1);
    expect(fp8Scale(0)).toBe(1);
    expect(fp8Scale(Number.NaN)).toBe(1);
    expect(fp8Scale(-1)).toBe(1);
    expect(fp8Scale(1)).toBe(Math.fround(1 / 448));
  }, 60_000);

  it('dc_s8_scale (the pack\'s int8 codes) is s8Scale\'s definition (compiler/ops/fused.ts) bit for bit on every float', () => {
    // The program built by the test above (same describe, run in order).
    expect(execFileSync(join(dir, 'scale'), ['all8'], { encoding: 'utf8' }).trim()).toBe('0');
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    u[0] = 0x3f; expect(s8Scale(f[0])).toBe(1);  // 63·2^-149: the quotient underflows
    u[0] = 0x40; expect(s8Scale(f[0])).toBe(2 ** -149);
  }, 60_000);
});
