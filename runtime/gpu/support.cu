// Runtime support kernels, built into every artifact (unit "runtime_support") so the runtime never
// needs a compiler on the GPU host.
//
// dc_fill: p[i] = offset + scale * u(i, seed) for i < n, u uniform in [-1, 1) from a 32-bit integer
// hash of (i, seed) (the same generator as test/gpu/harness.cu), stored as `kind`:
//   0 float32, 1 bfloat16, 2 float16, 3 float8 e4m3 (saturating), 4 zero bytes (integers, bool: n bytes).
// Used for --synthetic-weights (every learned weight from one seed) and nothing else. Grid-stride.
//
// dc_euler_step / dc_cfg_euler_step: the denoising loop on the device (runtime/gpu/model.ts
// denoise, runtime/pipeline/denoise.ts): the same float32 roundings as the host loop, bit for bit
// (explicit _rn intrinsics: no FMA contraction), so the device loop and the host loop give the same
// latents. `kind` of a velocity or latents-input buffer: 0 float32, 1 bfloat16 (stored nearest even,
// NaN as 0x7fc0, as compiler/ir/dtype.ts f32ToBf16).
//
// dc_rgb8: a VAE decoder's image [3, plane] (kind 0 float32, 1 bfloat16) -> interleaved RGB8
// [plane, 3], runtime/pipeline/image.ts rgb8Of per value: clamp(f32(f32(x*0.5) + 0.5), 0, 1), then
// round-half-even(f32(v*255)), NaN -> 0 (the same bytes as the host's table).
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

__device__ __forceinline__ float dc_load(const void* p, int kind, long long i) {
  return kind ? __uint_as_float((uint32_t)((const uint16_t*)p)[i] << 16) : ((const float*)p)[i];
}

__device__ __forceinline__ void dc_store(void* p, int kind, long long i, float x) {
  if (!p) return;
  if (kind) {
    uint32_t b = __float_as_uint(x);
    ((uint16_t*)p)[i] = (b & 0x7fffffffu) > 0x7f800000u ? (uint16_t)0x7fc0 : (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
  } else {
    ((float*)p)[i] = x;
  }
}

// lat[i] = f32(lat[i] + f32(dt * v[i])) (v null: no update, the first step's staging), then lat[i] as
// the graph's latents input stores it into out0 and out1 (each optional): one per replica.
extern "C" __global__ void dc_euler_step(float* lat, const void* v, int v_kind, float dt, void* out0, void* out1, int out_kind, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    float x = lat[i];
    if (v) { x = __fadd_rn(x, __fmul_rn(dt, dc_load(v, v_kind, i))); lat[i] = x; }
    dc_store(out0, out_kind, i, x);
    dc_store(out1, out_kind, i, x);
  }
}

// Qwen-Image's true CFG then the Euler step, one thread per token of `channels` values:
//   o = f32(u + f32(s * f32(c - u))); ratio = f32(f32(sqrt(sum c^2)) / f32(sqrt(sum o^2))) (sums in double);
//   lat = f32(lat + f32(dt * f32(o * ratio))).
extern "C" __global__ void dc_cfg_euler_step(float* lat, const void* vc, const void* vu, int v_kind, float scale, float dt,
                                             void* out0, void* out1, int out_kind, int tokens, int channels) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= tokens) return;
  long long base = (long long)t * channels;
  double cn = 0.0, nn = 0.0;
  for (int k = 0; k < channels; k++) {
    float c = dc_load(vc, v_kind, base + k), u = dc_load(vu, v_kind, base + k);
    float o = __fadd_rn(u, __fmul_rn(scale, __fsub_rn(c, u)));
    cn = __dadd_rn(cn, __dmul_rn((double)c, (double)c));
    nn = __dadd_rn(nn, __dmul_rn((double)o, (double)o));
  }
  float ratio = __fdiv_rn(__double2float_rn(sqrt(cn)), __double2float_rn(sqrt(nn)));
  for (int k = 0; k < channels; k++) {
    float c = dc_load(vc, v_kind, base + k), u = dc_load(vu, v_kind, base + k);
    float o = __fadd_rn(u, __fmul_rn(scale, __fsub_rn(c, u)));
    float x = __fadd_rn(lat[base + k], __fmul_rn(dt, __fmul_rn(o, ratio)));
    lat[base + k] = x;
    dc_store(out0, out_kind, base + k, x);
    dc_store(out1, out_kind, base + k, x);
  }
}

extern "C" __global__ void dc_rgb8(const void* img, int kind, unsigned char* out, long long plane) {
  for (long long p = blockIdx.x * (long long)blockDim.x + threadIdx.x; p < plane; p += (long long)gridDim.x * blockDim.x) {
    for (int c = 0; c < 3; c++) {
      float v = __fadd_rn(__fmul_rn(dc_load(img, kind, c * plane + p), 0.5f), 0.5f);
      v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;  // NaN stays NaN
      float q = __fmul_rn(v, 255.0f);
      out[3 * p + c] = q != q ? (unsigned char)0 : (unsigned char)__float2int_rn(q);
    }
  }
}
