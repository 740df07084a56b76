// dc_qdiv (templates/preamble.cuh), the division-free quantization of the row kernels and the
// attention pack, compiled for the host with nvcc and checked against x / s (and dc_qdiv1, the row
// kernels' form for scales that need no prescaling, against dc_qdiv bit for bit): the e4m3 code
// (__nv_fp8_e4m3, round to nearest even, saturating) of every quotient must be the division's, on
// random (x, amax) pairs over the whole float range (amax any positive float from 448·2^-149, |x| <= amax,
// signed zeros included; s = amax / 448 as the kernels compute it). CPU only; nothing runs on a GPU.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nvccEnv, resolveNvcc } from '../../compiler/build/nvcc.ts';
import { ROOT } from '../../compiler/paths.ts';

const PROGRAM = `#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cmath>
#include "preamble.cuh"
static uint64_t st = 0x9E3779B97F4A7C15ull;
static uint64_t next() { st ^= st << 13; st ^= st >> 7; st ^= st << 17; return st; }
static float fromBits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static unsigned code(float v) { return __nv_fp8_e4m3(v).__x; }
int main(int argc, char** argv) {
  const long n = atol(argv[1]);
  long differ = 0, divided = 0, nan = 0, differ1 = 0;
  for (long i = 0; i < n; ++i) {
    const float amax = fromBits((uint32_t)(next() % 0x7f7fe000u) + 0x00000200u); // any positive float from 448·2^-149 up (s never underflows to 0)
    const float s = amax / 448.f;
    if (!(s > 0.f)) continue;
    const uint64_t r = next();
    float x = (r % 16 == 0) ? ((r & 32) ? -0.f : 0.f) : amax * fromBits((uint32_t)(next() % 0x3f800000u) + 1u);
    if (r & 64) x = -x;
    const dc_qd_f p = dc_qprep(s);
    if (p.k != 1.f) ++divided;
    const float q = dc_qdiv(x, p);
    if (q != q) ++nan;
    if (code(q) != code(x / s)) { if (differ < 3) fprintf(stderr, "x=%a s=%a: %a vs %a\\n", x, s, q, x / s); ++differ; }
    if (p.k == 1.f) { const float q1 = dc_qdiv1(x, p); if (memcmp(&q1, &q, 4) != 0) ++differ1; }
  }
  printf("%ld %ld %ld %ld\\n", differ, divided, nan, differ1);
  return 0;
}
`;

const dir = mkdtempSync(join(tmpdir(), 'qdiv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dc_qdiv: x / s without a division (templates/preamble.cuh)', () => {
  it('gives the e4m3 code of x / s on 4 million random pairs, small scales scaled by 2^100', () => {
    writeFileSync(join(dir, 'qdiv.cu'), PROGRAM);
    const exe = join(dir, 'qdiv');
    execFileSync(resolveNvcc(), ['-O2', '-std=c++17', '-Xcompiler', '-ffp-contract=off', `-I${join(ROOT, 'templates')}`, '-o', exe, join(dir, 'qdiv.cu')], { env: nvccEnv(), stdio: 'pipe' });
    const [differ, divided, nan, differ1] = execFileSync(exe, ['4000000'], { encoding: 'utf8' }).trim().split(' ').map(Number);
    expect(nan).toBe(0);
    expect(differ1).toBe(0); // dc_qdiv1, where the scale needs no prescaling: the same bits as dc_qdiv
    expect(divided).toBeGreaterThan(100_000); // amax below ~2^-59 (a quarter of the exponents): x and s times 2^100
    expect(differ).toBe(0);
  }, 120_000);
});
