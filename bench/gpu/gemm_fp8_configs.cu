// Exhaustive cuBLASLt configuration search for the FP8 GEMMs the runtime launches (issue 5, 7):
// is there a faster algorithm than the heuristic's first answer (what runtime/gpu/cublaslt.ts runs)?
//
// Each GEMM is set up exactly as the runtime sets up a deferred FP8 GEMM: Y[M, N] = X[M, K] · Wᵀ
// read column-major as D (N x M, bf16, ld N) = op(A)·B with A = W (e4m3 [N, K], transposed), B = X
// (e4m3, K x M), fp32 compute and scale type, unit scales, no epilogue, fast accumulation on, a
// 32 MiB workspace. For each shape (M,N,K arguments):
//   1. the heuristic's answers (up to 16), each timed;
//   2. every algorithm id cuBLASLt lists for these types x every tile and stage id it reports as a
//      capability x the cluster shapes auto, 1x1, 2x1, 1x2, 2x2, 4x1, 1x4 (CUDA 13 reports none) x CTA
//      swizzling off and on where supported, kept where
//      cublasLtMatmulAlgoCheck accepts it, each timed briefly (screen);
//   3. the heuristic's first answer and the five fastest of (1)+(2) timed again, interleaved, twice.
// Timing: CUDA events around back-to-back launches after a warm-up; inputs are random e4m3 codes
// (no NaN). Prints one JSON line per shape: heuristic0 and best medians (us), TFLOP/s, the best
// configuration, counts. Build: nvcc -O2 -std=c++17 -o gemm_fp8_configs gemm_fp8_configs.cu -lcublasLt
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); exit(1); } } while (0)
#define LT(x) do { cublasStatus_t s_ = (x); if (s_ != CUBLAS_STATUS_SUCCESS) { fprintf(stderr, "%s:%d cublasLt status %d\n", __FILE__, __LINE__, (int)s_); exit(1); } } while (0)

static const size_t WORKSPACE = 32u << 20;

struct Candidate { cublasLtMatmulAlgo_t algo; std::string what; float screen = 1e30f; float final = 1e30f; };

static __global__ void fill_e4m3(uint8_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 0x9e3779b1u + seed;
    h ^= h >> 16; h *= 0x85ebca6bu; h ^= h >> 13;
    // Exponent field 4..9 (values 2^-3 .. 2^2), any mantissa and sign: never NaN, no overflow in K sums.
    p[i] = (uint8_t)((h & 0x80u) | ((4u + (h >> 8) % 6u) << 3) | ((h >> 16) & 7u));
  }
}

static size_t configSize(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoConfigAttributes_t attr) {
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&a, attr, nullptr, 0, &written);
  return written;
}

static bool setConfig(cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoConfigAttributes_t attr, uint64_t v) {
  const size_t n = configSize(a, attr);
  if (n == 0 || n > 8) return false;
  return cublasLtMatmulAlgoConfigSetAttribute(&a, attr, &v, n) == CUBLAS_STATUS_SUCCESS;  // little-endian: the low n bytes
}

static std::vector<uint64_t> capList(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoCapAttributes_t attr, size_t elem) {
  size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, nullptr, 0, &written) != CUBLAS_STATUS_SUCCESS || written == 0) return {};
  std::vector<uint8_t> buf(written);
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, buf.data(), written, &written) != CUBLAS_STATUS_SUCCESS) return {};
  std::vector<uint64_t> out;
  for (size_t i = 0; i + elem <= written; i += elem) { uint64_t v = 0; memcpy(&v, buf.data() + i, elem); out.push_back(v); }
  return out;
}

static uint64_t capScalar(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoCapAttributes_t attr) {
  uint64_t v = 0; size_t written = 0;
  cublasLtMatmulAlgoCapGetAttribute(&a, attr, &v, sizeof(v), &written);
  return v;
}

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s M,N,K [M,N,K ...]\n", argv[0]); return 2; }
  cublasLtHandle_t lt; LT(cublasLtCreate(&lt));
  cudaStream_t stream; CK(cudaStreamCreate(&stream));
  void* workspace; CK(cudaMalloc(&workspace, WORKSPACE));
  cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
  const float one = 1.f, zero = 0.f;
  for (int s = 1; s < argc; ++s) {
    long M, N, K;
    if (sscanf(argv[s], "%ld,%ld,%ld", &M, &N, &K) != 3) { fprintf(stderr, "bad shape %s\n", argv[s]); return 2; }
    uint8_t *A, *B; void* D;
    CK(cudaMalloc(&A, (size_t)N * K)); CK(cudaMalloc(&B, (size_t)K * M)); CK(cudaMalloc(&D, (size_t)N * M * 2));
    fill_e4m3<<<1024, 256, 0, stream>>>(A, (size_t)N * K, 1234u);
    fill_e4m3<<<1024, 256, 0, stream>>>(B, (size_t)K * M, 5678u);
    CK(cudaStreamSynchronize(stream));

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
    size_t ws = WORKSPACE;
    LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));

    auto launch = [&](const cublasLtMatmulAlgo_t& algo) {
      return cublasLtMatmul(lt, desc, &one, A, la, B, lb, &zero, D, ld, D, ld, &algo, workspace, WORKSPACE, stream);
    };
    auto timeIt = [&](const cublasLtMatmulAlgo_t& algo, int warm, int iters) -> float {
      for (int i = 0; i < warm; ++i) if (launch(algo) != CUBLAS_STATUS_SUCCESS) return 1e30f;
      CK(cudaEventRecord(e0, stream));
      for (int i = 0; i < iters; ++i) launch(algo);
      CK(cudaEventRecord(e1, stream));
      CK(cudaEventSynchronize(e1));
      if (cudaGetLastError() != cudaSuccess) return 1e30f;
      float ms = 0; CK(cudaEventElapsedTime(&ms, e0, e1));
      return 1000.f * ms / iters;
    };

    std::vector<Candidate> cands;
    // 1. The heuristic's answers.
    cublasLtMatmulHeuristicResult_t heur[16]; int nh = 0;
    LT(cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, ld, ld, pref, 16, heur, &nh));
    for (int i = 0; i < nh; ++i) {
      Candidate c; c.algo = heur[i].algo; c.what = "heuristic#" + std::to_string(i);
      c.screen = timeIt(c.algo, 2, 5);
      cands.push_back(c);
    }
    // 2. Every configuration the algorithms report.
    int ids[256], nids = 0;
    LT(cublasLtMatmulAlgoGetIds(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_8F_E4M3, CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_16BF, 256, ids, &nids));
    int tried = 0;
    std::vector<Candidate> found;
    for (int a = 0; a < nids; ++a) {
      cublasLtMatmulAlgo_t base;
      if (cublasLtMatmulAlgoInit(lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_8F_E4M3, CUDA_R_8F_E4M3, CUDA_R_16BF, CUDA_R_16BF, ids[a], &base) != CUBLAS_STATUS_SUCCESS) continue;
      std::vector<uint64_t> tiles = capList(base, CUBLASLT_ALGO_CAP_TILE_IDS, 4);
      std::vector<uint64_t> stages = capList(base, CUBLASLT_ALGO_CAP_STAGES_IDS, 4);
      // CUDA 13's cuBLASLt lists no cluster-shape capability: the usual shapes, kept where the check accepts them.
      std::vector<uint64_t> clusters = {CUBLASLT_CLUSTER_SHAPE_AUTO, CUBLASLT_CLUSTER_SHAPE_1x1x1, CUBLASLT_CLUSTER_SHAPE_2x1x1, CUBLASLT_CLUSTER_SHAPE_1x2x1,
                                        CUBLASLT_CLUSTER_SHAPE_2x2x1, CUBLASLT_CLUSTER_SHAPE_4x1x1, CUBLASLT_CLUSTER_SHAPE_1x4x1};
      const bool swizzle = capScalar(base, CUBLASLT_ALGO_CAP_CTA_SWIZZLING_SUPPORT) != 0;
      if (tiles.empty()) tiles.push_back(0);
      if (stages.empty()) stages.push_back(0);
      for (uint64_t t : tiles) for (uint64_t st : stages) for (uint64_t cl : clusters) for (int sw = 0; sw <= (swizzle ? 1 : 0); ++sw) {
        cublasLtMatmulAlgo_t algo = base;
        if (!setConfig(algo, CUBLASLT_ALGO_CONFIG_TILE_ID, t)) continue;
        setConfig(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, st);
        setConfig(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, cl);
        setConfig(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, (uint64_t)sw);
        ++tried;
        cublasLtMatmulHeuristicResult_t check;
        if (cublasLtMatmulAlgoCheck(lt, desc, la, lb, ld, ld, &algo, &check) != CUBLAS_STATUS_SUCCESS) continue;
        if (check.workspaceSize > WORKSPACE) continue;
        Candidate c; c.algo = algo;
        c.what = "id " + std::to_string(ids[a]) + " tile " + std::to_string(t) + " stages " + std::to_string(st) + " cluster " + std::to_string(cl) + " swizzle " + std::to_string(sw);
        found.push_back(c);
      }
    }
    // At most 600 screened, evenly spread over what the check accepted.
    const int valid = (int)found.size();
    const size_t stride = found.size() > 600 ? (found.size() + 599) / 600 : 1;
    for (size_t i = 0; i < found.size(); i += stride) {
      found[i].screen = timeIt(found[i].algo, 1, 3);
      cands.push_back(found[i]);
    }
    // 3. The heuristic's first answer and the five fastest, timed again (interleaved, twice).
    std::vector<size_t> order(cands.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return cands[x].screen < cands[y].screen; });
    std::vector<size_t> finalists;
    if (nh > 0) finalists.push_back(0);
    for (size_t i = 0; i < order.size() && finalists.size() < 6; ++i) if (order[i] != 0 || nh == 0) finalists.push_back(order[i]);
    for (int round = 0; round < 2; ++round)
      for (size_t f : finalists) cands[f].final = std::min(cands[f].final, timeIt(cands[f].algo, 3, 30));
    const double flop = 2.0 * M * N * K;
    size_t best = finalists.empty() ? 0 : finalists[0];
    for (size_t f : finalists) if (cands[f].final < cands[best].final) best = f;
    const float h0 = nh > 0 ? cands[0].final : 0.f;
    printf("{\"M\":%ld,\"N\":%ld,\"K\":%ld,\"heuristics\":%d,\"algoIds\":%d,\"configsTried\":%d,\"configsValid\":%d,"
           "\"heuristic0_us\":%.2f,\"heuristic0_tflops\":%.1f,\"best_us\":%.2f,\"best_tflops\":%.1f,\"best\":\"%s\",\"speedup\":%.4f,\"finalists\":[",
           M, N, K, nh, nids, tried, valid, h0, flop / (h0 * 1e-6) / 1e12, cands[best].final, flop / (cands[best].final * 1e-6) / 1e12,
           cands[best].what.c_str(), h0 / cands[best].final);
    for (size_t i = 0; i < finalists.size(); ++i) printf("%s{\"what\":\"%s\",\"us\":%.2f}", i ? "," : "", cands[finalists[i]].what.c_str(), cands[finalists[i]].final);
    printf("]}\n");
    fflush(stdout);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la); cublasLtMatrixLayoutDestroy(lb); cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatmulDescDestroy(desc);
    CK(cudaFree(A)); CK(cudaFree(B)); CK(cudaFree(D));
  }
  return 0;
}
