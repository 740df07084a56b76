// LayerNorm+Modulate+Quantize [4608, 6144] (flux2_dev's single-stream norm) written by hand in variants that each
// drop one cost of the generated kernel, timed beside the 1 GiB copy and a copy of its own size (session 13, call L1,
// issue 5). Build on the GPU host with the preamble of the generated kernels: bench/gpu/calls/session13-L1.sh.
// Variant A read the ring through the preamble's dc_lds8, which at 8c2f04c split a plane into four 4-byte loads; with
// the preamble since then A reads it as E does.
#include "../../templates/preamble.cuh"
#include <cstdio>
#include <vector>
#include <cuda_runtime.h>
constexpr int ROWS = 4608, COLS = 6144, T = 256, PV = 3, N = 24;

// FAST: per-row uniform maths with approximate intrinsics; MULQ: quotient x * (1/s) in one multiply;
// LDS128: ring reads as one 16-byte shared load; HOIST: 1 + scale held as floats.
template <bool FAST, bool MULQ, bool LDS128, bool HOIST, int MINB>
__global__ void __launch_bounds__(256, MINB) lnmq(const __nv_bfloat16* __restrict__ in0, const __nv_bfloat16* __restrict__ in1,
    const __nv_bfloat16* __restrict__ in2, __nv_fp8_e4m3* __restrict__ out0, float* __restrict__ out1) {
  extern __shared__ __align__(16) unsigned char dc_row_smem[];
  __shared__ __align__(16) float scratch[64];
  const int tid = threadIdx.x;
  { const long long srow = blockIdx.x; if (srow < ROWS) {
    unsigned char* st = dc_row_smem;
#pragma unroll
    for (int j = 0; j < PV; ++j) { const long long cb = ((long long)j * T + tid) * 8; dc_cp_async16(st + (j * T + tid) * 16, in0 + srow * COLS + cb); }
  } dc_cp_commit(); }
  uint4 xr1[PV], xr2[PV];
#pragma unroll
  for (int j = 0; j < PV; ++j) { const long long cb = ((long long)j * T + tid) * 8; xr1[j] = *reinterpret_cast<const uint4*>(in1 + cb); xr2[j] = *reinterpret_cast<const uint4*>(in2 + cb); }
  float sc[HOIST ? N : 1];
  if (HOIST) {
#pragma unroll
    for (int i = 0; i < N; ++i) sc[i] = 1.f + dc_pk<float>(in1, xr1, i);
  }
  unsigned it = 0;
  for (long long row = blockIdx.x; row < ROWS; row += gridDim.x, ++it) {
    { const long long srow = row + gridDim.x; if (srow < ROWS) {
      unsigned char* st = dc_row_smem + ((it + 1) % 2) * 12288;
#pragma unroll
      for (int j = 0; j < PV; ++j) { const long long cb = ((long long)j * T + tid) * 8; dc_cp_async16(st + (j * T + tid) * 16, in0 + srow * COLS + cb); }
    } }
    dc_cp_commit();
    dc_cp_wait<1>();
    const unsigned char* cur = dc_row_smem + (it % 2) * 12288;
    float x0[N];
#pragma unroll
    for (int j = 0; j < PV; ++j) {
      if (LDS128) {
        uint4 raw; asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(raw.x), "=r"(raw.y), "=r"(raw.z), "=r"(raw.w) : "r"((unsigned)__cvta_generic_to_shared(cur + (j * T + tid) * 16)));
        const unsigned w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) { x0[j * 8 + 2 * k] = __uint_as_float(w[k] << 16); x0[j * 8 + 2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u); }
      } else dc_lds8<float>(in0, cur + (j * T + tid) * 16, 12288, &x0[j * 8]);
    }
    float p0 = 0.f, q0 = 0.f;
#pragma unroll
    for (int i = 0; i < N; ++i) { p0 += x0[i]; q0 += x0[i] * x0[i]; }
    dc_block_sum2_w<float, 8>(p0, q0, scratch);
    float mean0, r0;
    if (FAST) { mean0 = p0 * (1.f / COLS); const float var0 = q0 * (1.f / COLS) - mean0 * mean0; r0 = rsqrtf(fmaxf(var0, 0.f) + 1e-6f); }
    else { mean0 = p0 / float(COLS); const float var0 = q0 / float(COLS) - mean0 * mean0; r0 = 1.f / sqrtf((var0 > 0.f ? var0 : 0.f) + 9.999999974752427e-7f); }
    float v1[N];
    float am = 0.f;
#pragma unroll
    for (int i = 0; i < N; ++i) {
      const float n = (x0[i] - mean0) * r0;
      v1[i] = n * (HOIST ? sc[i] : (1.f + dc_pk<float>(in1, xr1, i))) + dc_pk<float>(in2, xr2, i);
      am = dc_amax(am, v1[i]);
    }
    const float amax = dc_block_max_w<float, 8>(am, scratch + 32);
    const float s = amax > 0.f ? (FAST ? amax * (1.f / 448.f) : amax / 448.f) : 1.f;
    float v2[N];
    if (MULQ) {
      const float rs = FAST ? __fdividef(1.f, s) : 1.f / s;
#pragma unroll
      for (int i = 0; i < N; ++i) v2[i] = v1[i] * rs;
    } else {
      const auto qd = dc_qprep(s);
      if (qd.k == 1.f) {
#pragma unroll
        for (int i = 0; i < N; ++i) v2[i] = dc_qmul1(v1[i], qd);
      } else {
#pragma unroll
        for (int i = 0; i < N; ++i) v2[i] = dc_qmul(v1[i], qd);
      }
    }
#pragma unroll
    for (int j = 0; j < PV; ++j) { const long long cb = ((long long)j * T + tid) * 8; dc_store8q<float>(out0, row * COLS + cb, &v2[j * 8]); }
    if (tid == 0) out1[row] = s;
  }
}

__global__ void fill(__nv_bfloat16* p, long long n, unsigned seed, float scale) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 0x9e3779b1u + seed; h ^= h >> 16; h *= 0x85ebca6bu; h ^= h >> 13; h *= 0xc2b2ae35u; h ^= h >> 16;
    p[i] = __float2bfloat16((h / 4294967296.f - 0.5f) * scale);
  }
}
__global__ void copy16(const uint4* __restrict__ a, uint4* __restrict__ b, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) b[i] = a[i];
}

typedef void (*K)(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*, __nv_fp8_e4m3*, float*);
int main() {
  const long long n = (long long)ROWS * COLS;
  __nv_bfloat16 *x, *sc, *sh; __nv_fp8_e4m3 *o, *ref; float *os;
  cudaMalloc(&x, n * 2); cudaMalloc(&sc, COLS * 2); cudaMalloc(&sh, COLS * 2); cudaMalloc(&o, n); cudaMalloc(&ref, n); cudaMalloc(&os, ROWS * 4);
  fill<<<1024, 256>>>(x, n, 1, 8.f); fill<<<8, 256>>>(sc, COLS, 2, 1.f); fill<<<8, 256>>>(sh, COLS, 3, 1.f);
  struct V { const char* name; K k; int perSm; };
  V vs[] = {
    {"A current", lnmq<false, false, false, false, 3>, 3},
    {"B fast row maths", lnmq<true, false, false, false, 3>, 3},
    {"C B + x*(1/s)", lnmq<true, true, false, false, 3>, 3},
    {"D C + LDS.128", lnmq<true, true, true, false, 3>, 3},
    {"E A + LDS.128", lnmq<false, false, true, false, 3>, 3},
    {"F D + hoisted 1+scale", lnmq<true, true, true, true, 3>, 3},
    {"G D at 4 CTAs/SM", lnmq<true, true, true, false, 4>, 4},
    {"H E at 4 CTAs/SM", lnmq<false, false, true, false, 4>, 4},
    {"I D at 2 CTAs/SM", lnmq<true, true, true, false, 2>, 2},
  };
  const int nv = sizeof(vs) / sizeof(vs[0]);
  for (auto& v : vs) cudaFuncSetAttribute(v.k, cudaFuncAttributeMaxDynamicSharedMemorySize, 24576);
  cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
  const double bytes = n * 2.0 + n + ROWS * 4.0 + COLS * 4.0;
  // copies: 1 GiB and the kernel's own bytes (read n*2, write n: as a copy of 1.5 n bytes each way... use bytes/2 each way)
  size_t big = 1ull << 29; void *ca, *cb; cudaMalloc(&ca, big); cudaMalloc(&cb, big);
  for (int round = 0; round < 3; ++round) {
    for (int rep = 0; rep < 2; ++rep) {
      size_t sz = rep ? (size_t)(bytes / 2) & ~15ull : big;
      cudaMemcpyAsync(cb, ca, sz, cudaMemcpyDeviceToDevice);
      cudaEventRecord(e0); for (int i = 0; i < 50; ++i) cudaMemcpyAsync(cb, ca, sz, cudaMemcpyDeviceToDevice); cudaEventRecord(e1); cudaEventSynchronize(e1);
      float ms; cudaEventElapsedTime(&ms, e0, e1);
      printf("round %d copy %s: %.2f us, %.0f GB/s\n", round, rep ? "own size" : "1 GiB", ms * 1000 / 50, 2.0 * sz * 50 / (ms * 1e-3) / 1e9);
    }
    for (int k = 0; k < nv; ++k) {
      int grid = 132 * vs[k].perSm;
      vs[k].k<<<grid, 256, 24576>>>(x, sc, sh, k ? o : ref, os);
      cudaEventRecord(e0); for (int i = 0; i < 200; ++i) vs[k].k<<<grid, 256, 24576>>>(x, sc, sh, k ? o : ref, os); cudaEventRecord(e1); cudaEventSynchronize(e1);
      float ms; cudaEventElapsedTime(&ms, e0, e1);
      int diff = 0, maxd = 0;
      if (k && round == 0) {
        std::vector<unsigned char> a(n), b(n); cudaMemcpy(a.data(), ref, n, cudaMemcpyDeviceToHost); cudaMemcpy(b.data(), o, n, cudaMemcpyDeviceToHost);
        for (long long i = 0; i < n; ++i) if (a[i] != b[i]) { ++diff; int d = abs((int)(a[i] & 0x7f) - (int)(b[i] & 0x7f)); if (d > maxd) maxd = d; }
      }
      printf("round %d %-26s %7.2f us %6.0f GB/s%s", round, vs[k].name, ms * 1000 / 200, bytes * 200 / (ms * 1e-3) / 1e9, "");
      if (k && round == 0) printf("  codes differing from A: %d (max %d)", diff, maxd);
      printf("  err=%s\n", cudaGetErrorString(cudaGetLastError()));
    }
  }
  return 0;
}
