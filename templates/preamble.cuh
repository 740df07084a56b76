// Shared preamble of every generated kernel: element loads/stores for each storage type, the
// maths helpers the per-op snippets use, and block-wide reductions for the row template.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_fp4.h>
#include <stdint.h>

// Row kernels ask ptxas for CTAs per SM (render.ts rowCtasPerSm, measured on the H100). The same
// source compiled for sm_100a needs a few more registers per thread (full-size Flux.2 row kernels
// spilled 24-112 bytes at the sm_90a budget), so there they ask for one CTA per SM fewer; the
// persistent grid is unchanged (extra CTAs wait their turn). Not timed: no B200 here.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 1000
#define DC_ROW_MIN_BLOCKS(n) ((n) > 1 ? (n) - 1 : 1)
#else
#define DC_ROW_MIN_BLOCKS(n) (n)
#endif

template <typename T> __device__ __forceinline__ T dc_load(const float* p, long long i) { return T(p[i]); }
template <typename T> __device__ __forceinline__ T dc_load(const double* p, long long i) { return T(p[i]); }
template <typename T> __device__ __forceinline__ T dc_load(const __nv_bfloat16* p, long long i) { return T(__bfloat162float(p[i])); }
template <typename T> __device__ __forceinline__ T dc_load(const __half* p, long long i) { return T(__half2float(p[i])); }
template <typename T> __device__ __forceinline__ T dc_load(const __nv_fp8_e4m3* p, long long i) { return T(float(p[i])); }
template <typename T> __device__ __forceinline__ T dc_load(const long long* p, long long i) { return T(p[i]); }
template <typename T> __device__ __forceinline__ T dc_load(const int* p, long long i) { return T(p[i]); }
template <typename T> __device__ __forceinline__ T dc_load(const bool* p, long long i) { return T(p[i] ? 1 : 0); }
template <typename T> __device__ __forceinline__ T dc_load(const uint8_t* p, long long i) { return T(p[i]); }

template <typename T> __device__ __forceinline__ void dc_store(float* p, long long i, T v) { p[i] = float(v); }
template <typename T> __device__ __forceinline__ void dc_store(double* p, long long i, T v) { p[i] = double(v); }
template <typename T> __device__ __forceinline__ void dc_store(__nv_bfloat16* p, long long i, T v) { p[i] = __float2bfloat16_rn(float(v)); }
template <typename T> __device__ __forceinline__ void dc_store(__half* p, long long i, T v) { p[i] = __float2half_rn(float(v)); }
// Saturating, round-to-nearest-even: what the compiler's simulation (compiler/quant/formats.ts) does.
template <typename T> __device__ __forceinline__ void dc_store(__nv_fp8_e4m3* p, long long i, T v) { p[i] = __nv_fp8_e4m3(float(v)); }
template <typename T> __device__ __forceinline__ void dc_store(long long* p, long long i, T v) { p[i] = (long long)v; }
template <typename T> __device__ __forceinline__ void dc_store(int* p, long long i, T v) { p[i] = (int)v; }
template <typename T> __device__ __forceinline__ void dc_store(bool* p, long long i, T v) { p[i] = v != T(0); }
template <typename T> __device__ __forceinline__ void dc_store(uint8_t* p, long long i, T v) { p[i] = (uint8_t)v; }

// 2^x and 1/x as single MUFU instructions (ex2.approx.ftz, rcp.approx.ftz): __expf and __fdividef
// under -ftz=false wrap the same MUFU operations in subnormal range scaling. Results below 2^-126
// flush to 0: the sigmoid below is 0 once e^-x passes 2^126 (x < -87.3), and so GELU and SiLU give
// -0 where the exact value is still a normal float (GELU below x = -9.9, about -1e-37).
__device__ __forceinline__ float dc_ex2_ftz(float x) { float y; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
__device__ __forceinline__ float dc_rcp_ftz(float x) { float y; asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
// Sigmoid: 1 / (1 + 2^(-x·log2 e)), 4 instructions instead of expf's range reduction and an IEEE
// division (0 for a sum past 2^126, where the value is below 1e-38). On an H100,
// bench/gpu/activation_accuracy.cu: at most 1.8e-6 relative from float64 over [-30, 30] (the IEEE
// formula: 2.1e-7), far below bf16's half-ulp (2e-3).
__device__ __forceinline__ float dc_sigmoid(float x) { return dc_rcp_ftz(1.f + dc_ex2_ftz(x * -1.4426950408889634f)); }
__device__ __forceinline__ double dc_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
__device__ __forceinline__ float dc_gelu_erf(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
// GELU, tanh form: 0.5·x·(1 + tanh(u)) = x·sigmoid(2u) with u = √(2/π)·(x + 0.044715·x³), the same
// function (and no cancellation in 1 + tanh(u) for u < 0): x / (1 + 2^(x·(K0 + K1·x²))), K0 =
// -2√(2/π)·log2 e, K1 = 0.044715·K0, 7 instructions (the Qwen-Image MLP's GELU+Quantize is
// instruction-bound: bench/RESULTS.md, Session 21 N1; 133 -> 121 µs, Session 22 G1). At most 6.8e-6
// relative from float64 for |x| < 8 on the H100 (the IEEE tanhf formula: up to 1, cancelling to 0 for x < 0).
__device__ __forceinline__ float dc_gelu_tanh(float x) { return x * dc_rcp_ftz(1.f + dc_ex2_ftz(x * fmaf(x * x, -0.10294324159622192f, -2.302208185195923f))); }
__device__ __forceinline__ double dc_gelu_erf(double x) { return 0.5 * x * (1.0 + erf(x * 0.70710678118654752)); }
__device__ __forceinline__ double dc_gelu_tanh(double x) { return 0.5 * x * (1.0 + tanh(0.79788456080286536 * (x + 0.044715 * x * x * x))); }
template <typename T> __device__ __forceinline__ T dc_pow(T a, T b) { return b == T(2) ? a * a : b == T(0.5) ? sqrt(a) : pow(a, b); }
template <typename T> __device__ __forceinline__ T dc_max(T a, T b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
template <typename T> __device__ __forceinline__ T dc_min(T a, T b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }
// ONNX Clip: min(max(x, lo), hi), so hi wins when lo > hi (as the reference computes).
template <typename T> __device__ __forceinline__ T dc_clip(T x, T lo, T hi) { x = x < lo ? lo : x; return x > hi ? hi : x; }
template <typename T> __device__ __forceinline__ T dc_round_bf16(T x) { return T(__bfloat162float(__float2bfloat16_rn(float(x)))); }
template <typename T> __device__ __forceinline__ T dc_round_half(T x) { return T(__half2float(__float2half_rn(float(x)))); }
template <typename T> __device__ __forceinline__ T dc_round_e4m3(T x) { return T(float(__nv_fp8_e4m3(float(x)))); }

// Block-wide sum / max over all threads of the CTA (blockDim.x a multiple of 32, at most 1024).
// Lead = false drops the barrier that guards `scratch` against the previous reduction's readers:
// for callers that alternate two scratch buffers, so a barrier has passed since its last read.
template <typename T, bool Lead = true> __device__ __forceinline__ T dc_block_sum(T v, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (Lead) __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = T(0);
  for (int w = 0; w < warps; ++w) total += scratch[w];
  return total;
}
template <typename T, bool Lead = true> __device__ __forceinline__ T dc_block_max(T v, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) { T u = __shfl_xor_sync(0xffffffffu, v, o); v = u > v ? u : v; }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (Lead) __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T m = scratch[0];
  for (int w = 1; w < warps; ++w) m = scratch[w] > m ? scratch[w] : m;
  return m;
}

// 16-byte vector access of 8 consecutive elements (the element-wise templates' row kernels):
// one uint4 for 2-byte types, two for float, 8 bytes for fp8. Callers guarantee 16-byte alignment
// of p + i (i a multiple of 8, buffers 256-byte aligned).
template <typename T> __device__ __forceinline__ void dc_load8(const __nv_bfloat16* p, long long i, T* v) {
  uint4 raw = *reinterpret_cast<const uint4*>(p + i);
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int k = 0; k < 4; ++k) { float2 f = __bfloat1622float2(h[k]); v[2 * k] = T(f.x); v[2 * k + 1] = T(f.y); }
}
template <typename T> __device__ __forceinline__ void dc_load8(const __half* p, long long i, T* v) {
  uint4 raw = *reinterpret_cast<const uint4*>(p + i);
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int k = 0; k < 4; ++k) { float2 f = __half22float2(h[k]); v[2 * k] = T(f.x); v[2 * k + 1] = T(f.y); }
}
template <typename T> __device__ __forceinline__ void dc_load8(const float* p, long long i, T* v) {
  float4 a = *reinterpret_cast<const float4*>(p + i), b = *reinterpret_cast<const float4*>(p + i + 4);
  v[0] = T(a.x); v[1] = T(a.y); v[2] = T(a.z); v[3] = T(a.w); v[4] = T(b.x); v[5] = T(b.y); v[6] = T(b.z); v[7] = T(b.w);
}
template <typename T, typename X> __device__ __forceinline__ void dc_load8(const X* p, long long i, T* v) {
#pragma unroll
  for (int k = 0; k < 8; ++k) v[k] = dc_load<T>(p, i + k);
}
template <typename T> __device__ __forceinline__ void dc_store8(__nv_bfloat16* p, long long i, const T* v) {
  uint4 raw;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
  for (int k = 0; k < 4; ++k) h[k] = __floats2bfloat162_rn(float(v[2 * k]), float(v[2 * k + 1]));
  *reinterpret_cast<uint4*>(p + i) = raw;
}
template <typename T> __device__ __forceinline__ void dc_store8(__nv_fp8_e4m3* p, long long i, const T* v) {
  uint2 raw;
  __nv_fp8_e4m3* q = reinterpret_cast<__nv_fp8_e4m3*>(&raw);
#pragma unroll
  for (int k = 0; k < 8; ++k) q[k] = __nv_fp8_e4m3(float(v[k]));
  *reinterpret_cast<uint2*>(p + i) = raw;
}
template <typename T> __device__ __forceinline__ void dc_store8(float* p, long long i, const T* v) {
  *reinterpret_cast<float4*>(p + i) = make_float4(float(v[0]), float(v[1]), float(v[2]), float(v[3]));
  *reinterpret_cast<float4*>(p + i + 4) = make_float4(float(v[4]), float(v[5]), float(v[6]), float(v[7]));
}
template <typename T, typename X> __device__ __forceinline__ void dc_store8(X* p, long long i, const T* v) {
#pragma unroll
  for (int k = 0; k < 8; ++k) dc_store<T>(p, i + k, v[k]);
}

// Two sums in one block reduction (LayerNorm's sum and sum of squares).
template <typename T, bool Lead = true> __device__ __forceinline__ void dc_block_sum2(T& a, T& b, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) { a += __shfl_xor_sync(0xffffffffu, a, o); b += __shfl_xor_sync(0xffffffffu, b, o); }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (Lead) __syncthreads();
  if (lane == 0) { scratch[warp] = a; scratch[16 + warp] = b; }
  __syncthreads();
  a = T(0); b = T(0);
  for (int w = 0; w < warps; ++w) { a += scratch[w]; b += scratch[16 + w]; }
}

// Row kernels' shared-memory ring: 16-byte asynchronous copies global -> shared (cp.async, L2
// only), committed as one group per row and waited for with at most N groups still in flight.
__device__ __forceinline__ void dc_cp_async16(void* smem, const void* gmem) {
  const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" :: "r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void dc_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void dc_cp_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N) : "memory"); }
// Element i (compile-time after unrolling) of 8-element vectors of a 2-byte type held raw in
// registers (row kernels keep row-invariant inputs packed: half the registers of floats).
template <typename T> __device__ __forceinline__ T dc_pk(const __nv_bfloat16*, const uint4* a, int i) {
  const unsigned w = reinterpret_cast<const unsigned*>(a)[i >> 1];
  return T(__uint_as_float((i & 1) ? (w & 0xffff0000u) : (w << 16)));
}
template <typename T> __device__ __forceinline__ T dc_pk(const __half*, const uint4* a, int i) {
  const unsigned w = reinterpret_cast<const unsigned*>(a)[i >> 1];
  return T(__half2float(__ushort_as_half((unsigned short)((i & 1) ? (w >> 16) : (w & 0xffffu)))));
}
// 8 elements from the ring: one 16-byte plane for 2-byte types, two (planeBytes apart) for float.
// A 2-byte plane is copied into registers, then unpacked from its words by dc_pk (a bf16 is the high
// half of its float: one shift or mask). Unpacked as bf16 pairs through a reference to shared memory,
// it was read as four 4-byte loads: LayerNorm+Modulate+Quantize [4608, 6144] 34.9 µs against 34.0 as one
// 16-byte load (call L1), and 34.2 against 33.4 with pairs rather than words (calls L4, L5); H100 80GB
// HBM3, bench/RESULTS.md session 13.
// X: __nv_bfloat16 or __half (dc_pk's types; the float overload below is the more specialised).
template <typename T, typename X> __device__ __forceinline__ void dc_lds8(const X* tag, const unsigned char* s, int, T* v) {
  const uint4 raw = *reinterpret_cast<const uint4*>(s);
#pragma unroll
  for (int k = 0; k < 8; ++k) v[k] = dc_pk<T>(tag, &raw, k);
}
template <typename T> __device__ __forceinline__ void dc_lds8(const float*, const unsigned char* s, int planeBytes, T* v) {
  const float4 a = *reinterpret_cast<const float4*>(s), b = *reinterpret_cast<const float4*>(s + planeBytes);
  v[0] = T(a.x); v[1] = T(a.y); v[2] = T(a.z); v[3] = T(a.w); v[4] = T(b.x); v[5] = T(b.y); v[6] = T(b.z); v[7] = T(b.w);
}

// A norm's 1 / sqrt(x) a row: in float the IEEE square root, then the MUFU reciprocal (within 2
// ulp: the reference is float64, so an IEEE reciprocal bought only instructions); exact in double.
// Not rsqrtf: with it ptxas spilled flux2_dev's LayerNorm+Mul+Add at 3 CTAs an SM (80 registers).
__device__ __forceinline__ float dc_rsqrt(float x) { return __fdividef(1.f, sqrtf(x)); }
__device__ __forceinline__ double dc_rsqrt(double x) { return 1.0 / sqrt(x); }
// Per-token quantization's amax: max(a, |x|) with NaN left out (the simulation's rule,
// compiler/ops/quant.ts), one instruction.
__device__ __forceinline__ float dc_amax(float a, float x) { return fmaxf(a, fabsf(x)); }
__device__ __forceinline__ double dc_amax(double a, double x) { return fmax(a, fabs(x)); }
// The 8-bit scale of an amax for codes up to codeMax (compiler/quant/formats.ts amaxScale): fp32(amax / codeMax)
// (correctly rounded), 1 where that is not positive (amax 0, or so small that the quotient underflows: the codes are
// then 0, not the NaN an infinite reciprocal would give). dc_fp8_scale (e4m3, 448: fp8Scale) and dc_s8_scale (s8,
// 127: s8Scale, the attention pack's int8 codes); both checked on the host on every float by test/build/qdiv.test.ts.
__host__ __device__ __forceinline__ float dc_amax_scale(float amax, float codeMax) {
#ifdef __CUDA_ARCH__
  const float s = amax > 0.f ? __fdiv_rn(amax, codeMax) : 0.f;  // correctly rounded whatever the build's -prec-div
#else
  const float s = amax > 0.f ? amax / codeMax : 0.f;
#endif
  // (Divided only where amax > 0: unconditionally, some row-kernel variants spilled more, session 26.)
  return s > 0.f ? s : 1.f;
}
__host__ __device__ __forceinline__ float dc_fp8_scale(float amax) { return dc_amax_scale(amax, 448.f); }
__host__ __device__ __forceinline__ float dc_s8_scale(float amax) { return dc_amax_scale(amax, 127.f); }
// The 8-bit quantization's scaled value x · r, r = 1 / s rounded to fp32 (compiler/quant/formats.ts
// fp8Reciprocal: the reference's definition), from dc_qprep(s) made once a row or channel: one multiply
// a value (the exact quotient x / s took five instructions; bench/RESULTS.md "Session 25"). A scale below
// 2^-126 (amax below ~2^-117), whose 1 / s could pass fp32's range, works on x and s both times k = 2^100:
// powers of two, so the product is x · r's, exactly. The sign of zero is kept (e4m3 code 0x80 for -0).
// Checked against the reference's product on 4M random (x, amax) pairs over the whole float range on
// every CI run (test/build/qdiv.test.ts compiles these for the host). The scale itself is dc_fp8_scale's.
// The double overload (kernels computing in double) multiplies by the same r, held as a double.
struct dc_qd_f { float k, r; };
struct dc_qd_d { double r; };
__host__ __device__ __forceinline__ dc_qd_f dc_qprep(float s) {
  const float k = s < 0x1p-126f ? 0x1p100f : 1.f;
  return dc_qd_f{k, 1.f / (s * k)};
}
__host__ __device__ __forceinline__ dc_qd_d dc_qprep(double s) {
  const double r = 1.0 / s;
  return dc_qd_d{r < 0x1p126 ? (double)(float)r : (double)(float)(r * 0x1p-100) * 0x1p100};
}
__host__ __device__ __forceinline__ float dc_qmul(float x, const dc_qd_f& p) { return (x * p.k) * p.r; }
__host__ __device__ __forceinline__ double dc_qmul(double x, const dc_qd_d& p) { return x * p.r; }
// dc_qmul where p.k is 1 (s >= 2^-126: every row but near-zero ones), one multiply fewer and the same
// bits (x·1 is x). Row kernels choose it once a row, a warp-uniform branch (render.ts).
__host__ __device__ __forceinline__ float dc_qmul1(float x, const dc_qd_f& p) { return x * p.r; }
// 8 values -> e4m3 (saturating, round to nearest even: as __nv_fp8_e4m3(float)), two per
// conversion instruction, one 8-byte store.
template <typename T> __device__ __forceinline__ void dc_store8q(__nv_fp8_e4m3* p, long long i, const T* v) {
  uint2 raw;
  unsigned short h[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) h[k] = __nv_cvt_float2_to_fp8x2(make_float2(float(v[2 * k]), float(v[2 * k + 1])), __NV_SATFINITE, __NV_E4M3);
  raw.x = (unsigned)h[0] | ((unsigned)h[1] << 16); raw.y = (unsigned)h[2] | ((unsigned)h[3] << 16);
  *reinterpret_cast<uint2*>(p + i) = raw;
}

// Block reductions over a compile-time number of warps W (blockDim.x == 32·W): the same sums and
// maxima in the same order as dc_block_sum / dc_block_max / dc_block_sum2 with Lead = false, the
// scratch reads unrolled (scratch 16-byte aligned, so they may merge into vector loads).
template <typename T, int W> __device__ __forceinline__ T dc_block_sum_w(T v, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  T total = T(0);
#pragma unroll
  for (int w = 0; w < W; ++w) total += scratch[w];
  return total;
}
template <typename T, int W> __device__ __forceinline__ T dc_block_max_w(T v, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) { T u = __shfl_xor_sync(0xffffffffu, v, o); v = u > v ? u : v; }
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  T m = scratch[0];
#pragma unroll
  for (int w = 1; w < W; ++w) m = scratch[w] > m ? scratch[w] : m;
  return m;
}
template <typename T, int W> __device__ __forceinline__ void dc_block_sum2_w(T& a, T& b, T* scratch) {
  for (int o = 16; o > 0; o >>= 1) { a += __shfl_xor_sync(0xffffffffu, a, o); b += __shfl_xor_sync(0xffffffffu, b, o); }
  if ((threadIdx.x & 31) == 0) { scratch[threadIdx.x >> 5] = a; scratch[16 + (threadIdx.x >> 5)] = b; }
  __syncthreads();
  a = T(0); b = T(0);
#pragma unroll
  for (int w = 0; w < W; ++w) { a += scratch[w]; b += scratch[16 + w]; }
}
