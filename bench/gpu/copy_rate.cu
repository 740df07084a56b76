// Device-to-device copy rate on the GPU, the ceiling of a memory-bound kernel such as the attention
// pack: cudaMemcpyAsync of N bytes, CUDA events, median of 5 x 20 copies; bytes counted read + written.
// Build: nvcc -O2 -o copy bench/gpu/copy_rate.cu; usage: ./copy BYTES...
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <algorithm>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("error %s at %d\n", cudaGetErrorString(e), __LINE__); return 1; } } while (0)
int main(int argc, char** argv) {
  cudaDeviceProp p; CK(cudaGetDeviceProperties(&p, 0));
  printf("device %s, %d SMs\n", p.name, p.multiProcessorCount);
  for (int a = 1; a < argc; ++a) {
    size_t n = strtoull(argv[a], nullptr, 10);
    void *x, *y; CK(cudaMalloc(&x, n)); CK(cudaMalloc(&y, n)); CK(cudaMemset(x, 1, n));
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    for (int w = 0; w < 3; ++w) CK(cudaMemcpyAsync(y, x, n, cudaMemcpyDeviceToDevice));
    float ms[5];
    for (int r = 0; r < 5; ++r) {
      CK(cudaEventRecord(e0));
      for (int i = 0; i < 20; ++i) CK(cudaMemcpyAsync(y, x, n, cudaMemcpyDeviceToDevice));
      CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); CK(cudaEventElapsedTime(&ms[r], e0, e1));
    }
    std::sort(ms, ms + 5);
    const double us = ms[2] * 1000.0 / 20;
    printf("copy %zu bytes: %.1f us, %.2f TB/s (read + written)\n", n, us, 2.0 * n / us / 1e6);
    CK(cudaFree(x)); CK(cudaFree(y));
  }
  return 0;
}
