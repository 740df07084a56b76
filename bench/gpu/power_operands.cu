// Does the operands' value distribution move a power-capped FP8 GEMM? (issue 7)
//
// The full-size models run with synthetic weights (runtime/gpu/support.cu dc_fill: e4m3 of 448·u, u
// uniform in [-1, 1): codes of any exponent from the top down, random mantissas and signs), and the
// steps run at the card's 700 W cap. A trained checkpoint quantized per output channel (amax / 448)
// has roughly Gaussian codes: most values a few times below the channel's largest. Tensor-core power
// depends on the operands' bits, so the clock the cap allows may too. This times one GEMM shape
// (cuBLASLt, FP8 e4m3 with fast accumulation, unit scales, bf16 out: how the runtime runs a deferred
// GEMM) back to back for several seconds per operand distribution, X and W alike:
//   synthetic  e4m3(448·u), u uniform in [-1, 1)        (what --synthetic-weights draws)
//   gaussian   e4m3(clamp(448·g / 4.5, ±448)), g ~ N(0,1) (per-channel amax at ~4.5 sigma)
//   harness    bench/gpu/gemm_own.cu's codes: exponents 2^-3..2^2, any mantissa and sign
// and samples the board's power and SM clock through NVML (dlopen'd) between batches.
// Build: nvcc -O2 -std=c++17 -o pw bench/gpu/power_operands.cu -lcublasLt -ldl ; run: ./pw [M N K SECONDS]
#include <cublasLt.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)
#define LT(x) do { cublasStatus_t s_ = (x); if (s_ != CUBLAS_STATUS_SUCCESS) { fprintf(stderr, "%s:%d cublasLt status %d\n", __FILE__, __LINE__, (int)s_); exit(1); } } while (0)

static __device__ uint32_t hash32(uint64_t i, uint32_t seed) {
  uint32_t h = (uint32_t)i * 0x9E3779B1u + seed ^ (uint32_t)(i >> 32) * 0x27D4EB2Du;
  h ^= h >> 16; h *= 0x85EBCA6Bu; h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16;
  return h;
}
static __device__ float uniform(uint64_t i, uint32_t seed) { return (float)(hash32(i, seed) >> 8) * (2.0f / 16777216.0f) - 1.0f; }

// mode 0 synthetic, 1 gaussian (Box-Muller on two hashes), 2 harness codes.
static __global__ void fill(uint8_t* p, size_t n, int mode, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    if (mode == 2) {
      const uint32_t h = hash32(i, seed);
      p[i] = (uint8_t)((h & 0x80u) | ((4u + (h >> 8) % 6u) << 3) | ((h >> 16) & 7u));
      continue;
    }
    float v;
    if (mode == 0) {
      v = 448.f * uniform(i, seed);
    } else {
      const float u1 = 0.5f * (uniform(i, seed) + 1.f) + 1e-7f, u2 = uniform(i, seed ^ 0x5bd1e995u);
      v = fminf(fmaxf(448.f / 4.5f * sqrtf(-2.f * logf(u1)) * cospif(u2), -448.f), 448.f);
    }
    __nv_fp8_e4m3 c(v);
    p[i] = c.__x;
  }
}

typedef int (*NvmlInit)();
typedef int (*NvmlHandle)(unsigned, void**);
typedef int (*NvmlPower)(void*, unsigned*);
typedef int (*NvmlClock)(void*, int, unsigned*);

int main(int argc, char** argv) {
  const long M = argc > 3 ? atol(argv[1]) : 4608, N = argc > 3 ? atol(argv[2]) : 55296, K = argc > 3 ? atol(argv[3]) : 6144;
  const double seconds = argc > 4 ? atof(argv[4]) : 4.0;
  void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!nvml) { fprintf(stderr, "no libnvidia-ml.so.1\n"); return 2; }
  auto init = (NvmlInit)dlsym(nvml, "nvmlInit_v2");
  auto handle = (NvmlHandle)dlsym(nvml, "nvmlDeviceGetHandleByIndex_v2");
  auto power = (NvmlPower)dlsym(nvml, "nvmlDeviceGetPowerUsage");
  auto clock = (NvmlClock)dlsym(nvml, "nvmlDeviceGetClockInfo");
  void* dev = nullptr;
  if (!init || !handle || !power || !clock || init() != 0 || handle(0, &dev) != 0) { fprintf(stderr, "NVML unavailable\n"); return 2; }
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("device %s; GEMM %ldx%ldx%ld (cuBLASLt FP8 e4m3, fast accumulation, bf16 out), %.1f s a distribution\n", prop.name, M, N, K, seconds);

  uint8_t *X, *W; void* D; void* workspace;
  const size_t WS = 32u << 20;
  CK(cudaMalloc(&X, (size_t)M * K)); CK(cudaMalloc(&W, (size_t)N * K)); CK(cudaMalloc(&D, (size_t)M * N * 2)); CK(cudaMalloc(&workspace, WS));
  cublasLtHandle_t lt; LT(cublasLtCreate(&lt));
  cublasLtMatmulDesc_t desc; LT(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N; int8_t fast = 1;
  LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
  cublasLtMatrixLayout_t la, lb, ld;
  LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, K, N, K));
  LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, K, M, K));
  LT(cublasLtMatrixLayoutCreate(&ld, CUDA_R_16BF, N, M, N));
  cublasLtMatmulPreference_t pref; LT(cublasLtMatmulPreferenceCreate(&pref));
  size_t wsz = WS; LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsz, sizeof(wsz)));
  cublasLtMatmulHeuristicResult_t heur; int nh = 0;
  LT(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 1, &heur, &nh));
  if (!nh) { fprintf(stderr, "no cuBLASLt algorithm\n"); return 1; }
  const float one = 1.f, zero = 0.f;
  cudaStream_t s; CK(cudaStreamCreate(&s));
  cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  auto gemm = [&] { LT(cublasLtMatmul(lt, desc, &one, W, la, X, lb, &zero, D, ld, D, ld, &heur.algo, workspace, WS, s)); };
  const double flop = 2.0 * M * N * K;

  const char* names[3] = {"synthetic", "gaussian", "harness"};
  printf("| operands | rounds | µs a GEMM (median of batches) | TFLOP/s | board power W (median) | SM clock MHz (median) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (int round = 0; round < 2; ++round) {
    for (int mode = 0; mode < 3; ++mode) {
      fill<<<1024, 256, 0, s>>>(X, (size_t)M * K, mode, 1234u);
      fill<<<1024, 256, 0, s>>>(W, (size_t)N * K, mode, 5678u);
      CK(cudaStreamSynchronize(s));
      std::vector<float> us; std::vector<unsigned> watts, mhz;
      // Batches of 10 GEMMs; the first second is warm-up (the cap settles), then samples.
      double elapsed = 0;
      while (elapsed < seconds) {
        CK(cudaEventRecord(e0, s));
        for (int i = 0; i < 10; ++i) gemm();
        CK(cudaEventRecord(e1, s)); CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
        elapsed += ms / 1000.0;
        if (elapsed < 1.0) continue;
        unsigned mw = 0, clk = 0;
        power(dev, &mw); clock(dev, 1 /* NVML_CLOCK_SM */, &clk);
        us.push_back(100.f * ms); watts.push_back(mw / 1000); mhz.push_back(clk);
      }
      auto med = [](auto v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
      const float t = med(us);
      printf("| %s | %d | %.1f | %.0f | %u | %u |\n", names[mode], round + 1, t, flop / t / 1e6, med(watts), med(mhz));
      fflush(stdout);
    }
  }
  return 0;
}
