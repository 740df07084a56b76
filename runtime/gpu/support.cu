// Runtime support kernels, built into every artifact (unit "runtime_support") so the runtime never
// needs a compiler on the GPU host.
//
// dc_fill: p[i] = offset + scale * u(i, seed) for i < n, u uniform in [-1, 1) from a 32-bit integer
// hash of (i, seed) (the same generator as test/gpu/harness.cu), stored as `kind`:
//   0 float32, 1 bfloat16, 2 float16, 3 float8 e4m3 (saturating), 4 zero bytes (integers, bool: n bytes).
// Used for --synthetic-weights (every learned weight from one seed) and nothing else. Grid-stride.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>

__device__ __forceinline__ uint32_t dc_hash(uint32_t i, uint32_t seed) {
  uint32_t h = i * 0x9E3779B1u + seed;
  h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
  return h;
}

extern "C" __global__ void dc_fill(void* p, long long n, int kind, unsigned seed, float scale, float offset) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    // Mix the high half of the index in so tensors over 2^32 elements do not repeat.
    float u = (float)(dc_hash((uint32_t)i ^ (uint32_t)(i >> 32) * 0x27D4EB2Du, seed) >> 8) * (2.0f / 16777216.0f) - 1.0f;
    float v = offset + scale * u;
    switch (kind) {
      case 0: ((float*)p)[i] = v; break;
      case 1: ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(v); break;
      case 2: ((__half*)p)[i] = __float2half_rn(v); break;
      case 3: ((__nv_fp8_e4m3*)p)[i] = __nv_fp8_e4m3(v); break;
      default: ((uint8_t*)p)[i] = 0; break;
    }
  }
}
