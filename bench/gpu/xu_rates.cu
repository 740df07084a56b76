// Issue rates of the softmax's special-function and conversion instructions on one SM, alone and
// in pairs (two ops sharing a pipe take the sum of their times, on separate pipes the larger):
// which of ex2 (f32, f16x2, bf16x2) and the f32 -> bf16x2 / f16x2 / e4m3x2 packs run on the MUFU
// (XU) pipe, and how many results a lane each gives per SM clock.
//   nvcc -O3 -arch=sm_90a -o /tmp/xu bench/gpu/xu_rates.cu && /tmp/xu
//   (cuobjdump -sass /tmp/xu | grep -E 'MUFU|F2FP|HADD2|F2F' shows which SASS each became)
// One CTA of 1024 threads per SM, 8 independent chains a thread, cycles by clock64 in each CTA.
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

#define OP_EX2 asm volatile("ex2.approx.ftz.f32 %0, %0;" : "+r"(v[i]))
#define OP_EX2H2 asm volatile("ex2.approx.f16x2 %0, %0;" : "+r"(v[i]))
#define OP_EX2BF2 asm volatile("ex2.approx.ftz.bf16x2 %0, %0;" : "+r"(v[i]))
#define OP_BF2 asm volatile("cvt.rn.bf16x2.f32 %0, %0, %0;" : "+r"(v[i]))
#define OP_H2 asm volatile("cvt.rn.f16x2.f32 %0, %0, %0;" : "+r"(v[i]))
#define OP_E4 asm volatile("{.reg .b16 t; cvt.rn.satfinite.e4m3x2.f32 t, %0, %0; cvt.u32.u16 %0, t;}" : "+r"(v[i]))
#define OP_E4H2 asm volatile("{.reg .b16 t; cvt.rn.satfinite.e4m3x2.f16x2 t, %0; cvt.u32.u16 %0, t;}" : "+r"(v[i]))
#define OP_FFMA asm volatile("fma.rn.f32 %0, %0, %0, %0;" : "+r"(v[i]))
#define OP_HFMA2 asm volatile("fma.rn.f16x2 %0, %0, %0, %0;" : "+r"(v[i]))
#define OP_FMNMX asm volatile("max.f32 %0, %0, %1;" : "+r"(v[i]) : "r"(v[(i + 1) & 7]))

#define KERNEL(NAME, BODY)                                                              \
  __global__ void NAME(uint32_t* out, long long* cycles, int iters) {                  \
    uint32_t v[8];                                                                     \
    for (int i = 0; i < 8; ++i) v[i] = 0x3f000000u + threadIdx.x + i;                  \
    __syncthreads();                                                                   \
    const long long t0 = clock64();                                                    \
    for (int it = 0; it < iters; ++it) {                                               \
      _Pragma("unroll") for (int i = 0; i < 8; ++i) { BODY; }                         \
    }                                                                                  \
    __syncthreads();                                                                   \
    const long long t1 = clock64();                                                    \
    if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;                                \
    uint32_t s = 0;                                                                    \
    for (int i = 0; i < 8; ++i) s ^= v[i];                                             \
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;                                    \
  }

KERNEL(k_ex2, OP_EX2)
KERNEL(k_ex2h2, OP_EX2H2)
KERNEL(k_ex2bf2, OP_EX2BF2)
KERNEL(k_bf2, OP_BF2)
KERNEL(k_h2, OP_H2)
KERNEL(k_e4, OP_E4)
KERNEL(k_e4h2, OP_E4H2)
KERNEL(k_ffma, OP_FFMA)
KERNEL(k_hfma2, OP_HFMA2)
KERNEL(k_fmnmx, OP_FMNMX)
KERNEL(k_ex2_bf2, OP_EX2; OP_BF2)
KERNEL(k_ex2_h2, OP_EX2; OP_H2)
KERNEL(k_ex2_e4, OP_EX2; OP_E4)
KERNEL(k_ex2h2_h2, OP_EX2H2; OP_H2)
KERNEL(k_ex2h2_e4h2, OP_EX2H2; OP_E4H2)
KERNEL(k_ex2_ffma, OP_EX2; OP_FFMA)
KERNEL(k_bf2_ffma, OP_BF2; OP_FFMA)
KERNEL(k_h2_ffma, OP_H2; OP_FFMA)

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int threads = 1024, iters = 4096;
  uint32_t* out;
  long long* cycles;
  cudaMalloc(&out, sizeof(uint32_t) * sms * threads);
  cudaMalloc(&cycles, sizeof(long long) * sms);
  struct K { const char* name; void (*fn)(uint32_t*, long long*, int); int ops; };
  const K ks[] = {
      {"ex2.approx.ftz.f32", k_ex2, 1},          {"ex2.approx.f16x2", k_ex2h2, 1},
      {"ex2.approx.ftz.bf16x2", k_ex2bf2, 1},    {"cvt.rn.bf16x2.f32", k_bf2, 1},
      {"cvt.rn.f16x2.f32", k_h2, 1},             {"cvt.rn.satfinite.e4m3x2.f32", k_e4, 1},
      {"cvt.rn.satfinite.e4m3x2.f16x2", k_e4h2, 1}, {"fma.rn.f32", k_ffma, 1},
      {"fma.rn.f16x2", k_hfma2, 1},              {"max.f32", k_fmnmx, 1},
      {"ex2.f32 + cvt.bf16x2.f32", k_ex2_bf2, 2}, {"ex2.f32 + cvt.f16x2.f32", k_ex2_h2, 2},
      {"ex2.f32 + cvt.e4m3x2.f32", k_ex2_e4, 2}, {"ex2.f16x2 + cvt.f16x2.f32", k_ex2h2_h2, 2},
      {"ex2.f16x2 + cvt.e4m3x2.f16x2", k_ex2h2_e4h2, 2}, {"ex2.f32 + fma.f32", k_ex2_ffma, 2},
      {"cvt.bf16x2.f32 + fma.f32", k_bf2_ffma, 2}, {"cvt.f16x2.f32 + fma.f32", k_h2_ffma, 2},
  };
  printf("%-34s %14s %16s\n", "instruction(s), 8 chains", "cycles / iter", "warp instr / clk / SM");
  for (const K& k : ks) {
    k.fn<<<sms, threads>>>(out, cycles, 64);  // warm
    k.fn<<<sms, threads>>>(out, cycles, iters);
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) { printf("%s: %s\n", k.name, cudaGetErrorString(e)); return 1; }
    long long c[256];
    cudaMemcpy(c, cycles, sizeof(long long) * sms, cudaMemcpyDeviceToHost);
    double mean = 0;
    for (int i = 0; i < sms; ++i) mean += (double)c[i] / sms;
    // warp instructions issued per SM: 32 warps x iters x 8 chains x ops
    const double instr = 32.0 * iters * 8 * k.ops;
    printf("%-34s %14.1f %16.3f\n", k.name, mean / iters, instr / mean);
  }
  return 0;
}
