// Shared by the GPU test harnesses (harness.cu, attention_harness.cu): error checks, the
// deterministic input generator the TypeScript side reimplements (test/gpu/cases.ts dcHash,
// test/gpu/attention-data.ts), and opening the device with a kernel module.
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(x) do { CUresult r = (x); if (r != CUDA_SUCCESS) { const char* s; cuGetErrorString(r, &s); fprintf(stderr, "%s failed: %s (line %d)\n", #x, s, __LINE__); exit(1); } } while (0)
#define CHECKRT(x) do { cudaError_t r = (x); if (r != cudaSuccess) { fprintf(stderr, "%s failed: %s (line %d)\n", #x, cudaGetErrorString(r), __LINE__); exit(1); } } while (0)

// A 32-bit integer hash of (index, seed); dc_uniform maps it to [-1, 1).
__host__ __device__ inline uint32_t dc_hash(uint32_t i, uint32_t seed) {
  uint32_t h = i * 0x9E3779B1u + seed;
  h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
  return h;
}
__device__ inline float dc_uniform(uint32_t i, uint32_t seed) { return (float)(dc_hash(i, seed) >> 8) * (2.0f / 16777216.0f) - 1.0f; }

// Device 0's primary context made current, its name printed as "device NAME", the cubin loaded.
inline CUmodule dc_open(const char* cubin) {
  CHECK(cuInit(0));
  CUdevice dev; CHECK(cuDeviceGet(&dev, 0));
  CUcontext ctx; CHECK(cuDevicePrimaryCtxRetain(&ctx, dev)); CHECK(cuCtxSetCurrent(ctx));
  char name[256]; CHECK(cuDeviceGetName(name, sizeof name, dev));
  printf("device %s\n", name);
  CUmodule mod; CHECK(cuModuleLoad(&mod, cubin));
  return mod;
}
