// Probe of the wgmma descriptor convention templates/conv_wgmma.cu.njk relies on: one
// wgmma m64n200k16 (bf16, both operands K-major, no-swizzle layout) with the B operand starting
// `shift` 16-byte rows into its tile, for each (LBO, SBO) convention, against a host sum.
// H100 2026-11-26: swap=0 exact for shifts 0, 1, 3, 8, 13; swap=1 faults
// (bench/results/vae-wgmma-2026-11-26.md). wgmma_desc_probe.inc holds the m64n200k16 asm as
// compiler/codegen/conv.ts renders it, named `wg`. Build (sm_90a only), in bench/gpu:
//   nvcc -gencode arch=compute_90a,code=sm_90a -O2 -o probe wgmma_desc_probe.cu && ./probe
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdint.h>
#include <math.h>
#define N 200
#define PXS 216
__device__ uint64_t desc(uint32_t addr, uint32_t lbo, uint32_t sbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((lbo >> 4) & 0x3FFF) << 16) | ((uint64_t)((sbo >> 4) & 0x3FFF) << 32);
}
__device__ void wg(float* d, uint64_t da, uint64_t db);
#include "wgmma_desc_probe.inc"
__global__ void k(const __nv_bfloat16* A, const __nv_bfloat16* B, float* D, int shift, int swap) {
  __shared__ __align__(128) __nv_bfloat16 sA[2 * 64 * 8];
  __shared__ __align__(128) __nv_bfloat16 sB[2 * PXS * 8];
  int t = threadIdx.x;
  // A[m][k] -> sA[k/8][m][k%8]; B[p][k] -> sB[k/8][p][k%8]
  for (int i = t; i < 64 * 16; i += 128) { int m = i / 16, kk = i % 16; sA[(kk / 8) * 512 + m * 8 + kk % 8] = A[i]; }
  for (int i = t; i < PXS * 16; i += 128) { int p = i / 16, kk = i % 16; sB[(kk / 8) * PXS * 8 + p * 8 + kk % 8] = B[i]; }
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  __syncthreads();
  float acc[N / 2];
  for (int i = 0; i < N / 2; ++i) acc[i] = 0.f;
  uint32_t a = (uint32_t)__cvta_generic_to_shared(sA), b = (uint32_t)__cvta_generic_to_shared(sB) + shift * 16;
  uint64_t da = swap ? desc(a, 128, 64 * 16) : desc(a, 64 * 16, 128);
  uint64_t db = swap ? desc(b, 128, PXS * 16) : desc(b, PXS * 16, 128);
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
  wg(acc, da, db);
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  for (int i = 0; i < N / 2; ++i) asm volatile("" : "+f"(acc[i]) :: "memory");
  int warp = t / 32, lane = t % 32;
  for (int j = 0; j < N / 8; ++j) for (int h = 0; h < 2; ++h) for (int c = 0; c < 2; ++c)
    D[(16 * warp + lane / 4 + 8 * h) * N + 8 * j + 2 * (lane % 4) + c] = acc[4 * j + 2 * h + c];
}
int main() {
  __nv_bfloat16 hA[64 * 16], hB[PXS * 16]; float fA[64 * 16], fB[PXS * 16];
  for (int i = 0; i < 64 * 16; ++i) { fA[i] = (float)((i * 37 % 17) - 8) / 8; hA[i] = __float2bfloat16(fA[i]); }
  for (int i = 0; i < PXS * 16; ++i) { fB[i] = (float)((i * 53 % 13) - 6) / 4; hB[i] = __float2bfloat16(fB[i]); }
  __nv_bfloat16 *dA, *dB; float* dD; cudaMalloc(&dA, sizeof hA); cudaMalloc(&dB, sizeof hB); cudaMalloc(&dD, 64 * N * 4);
  cudaMemcpy(dA, hA, sizeof hA, cudaMemcpyHostToDevice); cudaMemcpy(dB, hB, sizeof hB, cudaMemcpyHostToDevice);
  static float hD[64 * N];
  for (int swap = 0; swap < 2; ++swap) for (int shift : {0, 1, 3, 8, 13}) {
    k<<<1, 128>>>(dA, dB, dD, shift, swap);
    cudaError_t e = cudaDeviceSynchronize();
    cudaMemcpy(hD, dD, sizeof hD, cudaMemcpyDeviceToHost);
    double err = 0;
    for (int m = 0; m < 64; ++m) for (int p = 0; p < N; ++p) {
      double s = 0; for (int kk = 0; kk < 16; ++kk) s += (double)fA[m * 16 + kk] * fB[(p + shift) * 16 + kk];
      err = fmax(err, fabs(s - hD[m * N + p]));
    }
    printf("probe swap=%d shift=%d err=%s max|diff|=%g\n", swap, shift, cudaGetErrorString(e), err);
  }
  return 0;
}
