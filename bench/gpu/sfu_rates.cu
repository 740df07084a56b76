// Throughput of the softmax's conversion and exponential instructions on one SM (elements per SM clock), and which SASS
// each PTX form becomes: ex2.approx.ftz.f32, ex2.approx.f16x2 and ex2.approx.ftz.bf16x2 (two elements an instruction in
// PTX: one MUFU op or two?), cvt.rn.f16x2.f32 (the f16 pairs of the integer P·V), cvt.rn.f32.s32 (its scores' I2FP).
// One CTA of 1024 threads a SM, 8 independent values a thread, ITERS rounds; cycles from clock64 across the CTA. Also
// cvt.rn.satfinite.e4m3x2.f32 (FP8 P·V's pairs), add.rn.f16x2, and two mixes (an exponential with an I2FP; with half an
// f16 pair conversion), to tell whether they share the exponentials' pipe.
// Build and run: nvcc -O3 -arch=sm_90a -o /tmp/sfu bench/gpu/sfu_rates.cu && /tmp/sfu && cuobjdump -sass /tmp/sfu | grep -E "MUFU|F2FP|I2F"
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>

constexpr int ITERS = 4096, THREADS = 1024;

template <int KIND>
__global__ void __launch_bounds__(THREADS, 1) rate(uint32_t seed, uint32_t* sink, unsigned long long* cycles) {
  __shared__ unsigned long long t0, t1;
  if (threadIdx.x == 0) { t0 = ~0ull; t1 = 0; }
  __syncthreads();
  uint32_t v[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) v[i] = (seed * (threadIdx.x + 1) * (i + 3)) & 0x3BFF3BFFu;  // small positive halves / floats
  const unsigned long long start = clock64();
  for (int it = 0; it < ITERS; ++it) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      uint32_t o;
      if (KIND == 0) asm volatile("ex2.approx.ftz.f32 %0, %1;" : "=r"(o) : "r"(v[i]));
      if (KIND == 1) asm volatile("ex2.approx.f16x2 %0, %1;" : "=r"(o) : "r"(v[i]));
      if (KIND == 2) asm volatile("ex2.approx.ftz.bf16x2 %0, %1;" : "=r"(o) : "r"(v[i]));
      if (KIND == 3) asm volatile("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(o) : "r"(v[i]), "r"(v[(i + 1) & 7]));
      if (KIND == 4) asm volatile("cvt.rn.f32.s32 %0, %1;" : "=r"(o) : "r"(v[i]));
      if (KIND == 5) asm volatile("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(*reinterpret_cast<uint16_t*>(&o)) : "r"(v[i]), "r"(v[(i + 1) & 7]));
      if (KIND == 6) asm volatile("add.rn.f16x2 %0, %1, %2;" : "=r"(o) : "r"(v[i]), "r"(0x64006400u));
      // Mixes: an exponential and an I2FP (KIND 7), an exponential and half an f16 pair conversion (KIND 8): whether they share a pipe.
      if (KIND == 7) { uint32_t a; asm volatile("ex2.approx.ftz.f32 %0, %1;" : "=r"(a) : "r"(v[i])); asm volatile("cvt.rn.f32.s32 %0, %1;" : "=r"(o) : "r"(v[i] ^ 5u)); o ^= a; }
      if (KIND == 8) { uint32_t a; asm volatile("ex2.approx.ftz.f32 %0, %1;" : "=r"(a) : "r"(v[i])); if (i & 1) asm volatile("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(o) : "r"(v[i]), "r"(a)); else o = a; }
      v[i] = o ^ (uint32_t)it;  // one ALU op a result keeps the chain live
    }
  }
  const unsigned long long end = clock64();
  atomicMin(&t0, start);
  atomicMax(&t1, end);
  uint32_t x = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) x ^= v[i];
  if (x == 0x12345678u) sink[threadIdx.x] = x;
  __syncthreads();
  if (threadIdx.x == 0) cycles[blockIdx.x] = t1 - t0;
}

template <int KIND>
void run(const char* name, int perInstr, int sms, uint32_t* sink, unsigned long long* cycles) {
  rate<KIND><<<sms, THREADS>>>(1u, sink, cycles);  // warm
  rate<KIND><<<sms, THREADS>>>(7u, sink, cycles);
  cudaDeviceSynchronize();
  unsigned long long h[1024];
  cudaMemcpy(h, cycles, sizeof(unsigned long long) * sms, cudaMemcpyDeviceToHost);
  double sum = 0;
  for (int i = 0; i < sms; ++i) sum += (double)h[i];
  const double instrs = (double)THREADS * ITERS * 8;
  printf("%-28s %6.2f instructions / SM clock (x32 lanes: %6.2f lanes), %6.2f elements / SM clock\n", name, instrs / (sum / sms) / 32.0, instrs / (sum / sms), instrs * perInstr / (sum / sms));
}

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  uint32_t* sink; unsigned long long* cycles;
  cudaMalloc(&sink, THREADS * 4); cudaMalloc(&cycles, 1024 * 8);
  cudaDeviceProp p; cudaGetDeviceProperties(&p, 0);
  printf("%s, %d SMs\n", p.name, sms);
  run<0>("ex2.approx.ftz.f32", 1, sms, sink, cycles);
  run<1>("ex2.approx.f16x2", 2, sms, sink, cycles);
  run<2>("ex2.approx.ftz.bf16x2", 2, sms, sink, cycles);
  run<3>("cvt.rn.f16x2.f32", 2, sms, sink, cycles);
  run<4>("cvt.rn.f32.s32", 1, sms, sink, cycles);
  run<5>("cvt.rn.satfinite.e4m3x2.f32", 2, sms, sink, cycles);
  run<6>("add.rn.f16x2", 2, sms, sink, cycles);
  run<7>("ex2 f32 + cvt.rn.f32.s32 (per ex2)", 1, sms, sink, cycles);
  run<8>("ex2 f32 + cvt f16x2 / 2 (per ex2)", 1, sms, sink, cycles);
  return cudaGetLastError() != cudaSuccess;
}
