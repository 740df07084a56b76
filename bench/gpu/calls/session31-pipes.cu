// Session 31's call C3: cycles a step of one warp a sub-partition (128 threads a CTA, 132 CTAs) for the softmax's
// instructions on sm_90a, 16 independent chains a thread, alone and in pairs (a pair on one pipe takes the sum, on two the
// larger). Extends bench/gpu/xu_rates.cu (session 17: MUFU and the packs) to the ALU and FMA instructions.
//   nvcc -arch=sm_90a -O3 -o /tmp/pipes bench/gpu/calls/session31-pipes.cu && /tmp/pipes
#include <cstdio>
#include <cstdint>
#define N 16
#define ITERS 256
__device__ __forceinline__ void ex2(float& x) { asm volatile("ex2.approx.ftz.f32 %0, %0;" : "+f"(x)); }
__device__ __forceinline__ void e4(float& x, float y) { uint16_t h; asm volatile("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(h) : "f"(x), "f"(y)); x = __int_as_float(((uint32_t)h << 8) | 0x3f000000u); }
__device__ __forceinline__ void f16(float& x, float y) { uint32_t r; asm volatile("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(x), "f"(y)); x = __int_as_float((r & 0x007fffffu) | 0x3f000000u); }
__device__ __forceinline__ void f16raw(float& x, float y) { uint32_t r; asm volatile("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(x), "f"(y)); x = __int_as_float(r); }
__device__ __forceinline__ void i2f(float& x) { asm volatile("cvt.rn.f32.s32 %0, %1;" : "=f"(x) : "r"(__float_as_int(x))); }
__device__ __forceinline__ void fmx(float& x, float y) { asm volatile("max.f32 %0, %0, %1;" : "+f"(x) : "f"(y)); }
__device__ __forceinline__ void ffma(float& x, float y) { asm volatile("fma.rn.f32 %0, %0, %1, %1;" : "+f"(x) : "f"(y)); }
__device__ __forceinline__ void hadd(float& x, float y) { uint32_t r = __float_as_uint(x); asm volatile("add.rn.f16x2 %0, %0, %1;" : "+r"(r) : "r"(__float_as_uint(y))); x = __uint_as_float(r); }
__device__ __forceinline__ void prmt(float& x, float y) { uint32_t r = __float_as_uint(x); asm volatile("prmt.b32 %0, %0, %1, 0x6420;" : "+r"(r) : "r"(__float_as_uint(y))); x = __uint_as_float(r); }
__device__ __forceinline__ void iadd(float& x, float y) { uint32_t r = __float_as_uint(x); asm volatile("add.u32 %0, %0, %1;" : "+r"(r) : "r"(__float_as_uint(y))); x = __uint_as_float(r); }
__device__ __forceinline__ void fmul(float& x, float y) { asm volatile("mul.f32 %0, %0, %1;" : "+f"(x) : "f"(y)); }
template <int K> __global__ void bench(float* out, long long* cyc, float seed) {
  float x[N];
#pragma unroll
  for (int i = 0; i < N; ++i) x[i] = seed * (i + 1) + threadIdx.x * 1e-3f;
  const float y = seed * 0.5f;
  __syncthreads();
  long long t0 = clock64();
#pragma unroll 1
  for (int it = 0; it < ITERS; ++it) {
#pragma unroll
    for (int i = 0; i < N; ++i) {
      if (K == 0) ex2(x[i]);
      if (K == 1) e4(x[i], y);
      if (K == 2) f16(x[i], y);
      if (K == 3) i2f(x[i]);
      if (K == 4) fmx(x[i], y);
      if (K == 5) ffma(x[i], y);
      if (K == 6) hadd(x[i], y);
      if (K == 7) prmt(x[i], y);
      if (K == 8) iadd(x[i], y);
      if (K == 9) { ex2(x[i]); e4(x[i], y); }        // MUFU + e4m3 pack
      if (K == 10) { ex2(x[i]); f16(x[i], y); }      // MUFU + f16x2 pack
      if (K == 11) { ex2(x[i]); i2f(x[i]); }         // MUFU + I2FP
      if (K == 12) { ex2(x[i]); fmx(x[i], y); ffma(x[i], y); } // MUFU + FMNMX + FFMA
      if (K == 13) { i2f(x[i]); ffma(x[i], y); }     // I2FP + FFMA
      if (K == 14) { e4(x[i], y); f16(x[i], y); }    // both packs
      if (K == 15) fmul(x[i], y);
      if (K == 16) { ex2(x[i]); hadd(x[i], y); }     // MUFU + HADD2
      if (K == 17) { ex2(x[i]); prmt(x[i], y); }     // MUFU + PRMT
    }
  }
  long long t1 = clock64();
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) s += x[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;
  if ((threadIdx.x & 31) == 0) cyc[blockIdx.x * 4 + threadIdx.x / 32] = t1 - t0;
}
template <int K> void run(const char* name, int ops) {
  float* out; long long* cyc; cudaMalloc(&out, 132 * 128 * 4); cudaMalloc(&cyc, 132 * 4 * 8);
  for (int w = 0; w < 2; ++w) bench<K><<<132, 128>>>(out, cyc, 0.37f);
  cudaDeviceSynchronize();
  long long h[528]; cudaMemcpy(h, cyc, sizeof h, cudaMemcpyDeviceToHost);
  double s = 0; for (int i = 0; i < 528; ++i) s += h[i];
  printf("%-22s %6.2f cycles a step\n", name, s / 528 / ITERS / N); (void)ops;
}
int main() {
  run<0>("MUFU.EX2", 1); run<1>("F2FP e4m3x2.f32", 1); run<2>("F2FP f16x2.f32", 1); run<3>("I2FP s32", 1);
  run<4>("FMNMX", 1); run<5>("FFMA", 1); run<6>("HADD2", 1); run<7>("PRMT", 1); run<8>("IADD", 1); run<15>("FMUL", 1);
  run<9>("EX2+e4m3 pack", 2); run<10>("EX2+f16x2 pack", 2); run<11>("EX2+I2FP", 2); run<12>("EX2+FMNMX+FFMA", 3);
  run<13>("I2FP+FFMA", 2); run<14>("e4m3+f16x2 packs", 2); run<16>("EX2+HADD2", 2); run<17>("EX2+PRMT", 2);
  return 0;
}
