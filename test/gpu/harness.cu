// GPU test harness for generated kernels (runs on the GPU host; Node is not there).
//
// Reads CASES/cases.txt, one case per line:
//   <kernel or chain k1:grid1+k2:grid2> <grid> <block> <smem> <iters> <save> <nargs> then per argument:
//   <in|out> <dtype-bytes> <elements> <seed> <kind> <modulus for integer inputs>
// loads CASES/kernels.cubin with the driver API, fills each input on the device from the shared
// deterministic generator (dc_hash in harness_common.cuh; the TypeScript side computes the same values), poisons
// each output with 0xFF bytes (NaN for floats), launches once, copies outputs to OUT/outputs.bin
// (all outputs of the cases with save=1, concatenated in order; save=S > 1 keeps every S-th element
// of each output), then times `iters` launches (after ten untimed ones) and prints
//   time <kernel> <microseconds per launch> <bytes read+written>
// Build: nvcc -O2 -o harness test/gpu/harness.cu -lcuda
#include "harness_common.cuh"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>



// kind: 0 float, 1 double, 2 bf16, 3 half, 4 fp8e4m3, 5 int64, 6 int32, 7 bool, 8 uint8
__global__ void fill(void* p, long long n, int kind, uint32_t seed, uint32_t mod) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    float u = dc_uniform((uint32_t)i, seed);
    switch (kind) {
      case 0: ((float*)p)[i] = u; break;
      case 1: ((double*)p)[i] = (double)u; break;
      case 2: ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(u); break;
      case 3: ((__half*)p)[i] = __float2half_rn(u); break;
      case 4: ((__nv_fp8_e4m3*)p)[i] = __nv_fp8_e4m3(u); break;
      case 5: ((long long*)p)[i] = (long long)(dc_hash((uint32_t)i, seed) % mod); break;
      case 6: ((int*)p)[i] = (int)(dc_hash((uint32_t)i, seed) % mod); break;
      case 7: ((bool*)p)[i] = (dc_hash((uint32_t)i, seed) & 1u) != 0; break;
      default: ((uint8_t*)p)[i] = (uint8_t)(dc_hash((uint32_t)i, seed) & 0xFFu); break;
    }
  }
}

int main(int argc, char** argv) {
  if (argc < 3) { fprintf(stderr, "usage: harness CASES_DIR OUT_DIR\n"); return 2; }
  char path[4096];
  snprintf(path, sizeof path, "%s/kernels.cubin", argv[1]);
  CUmodule mod = dc_open(path);
  snprintf(path, sizeof path, "%s/cases.txt", argv[1]);
  FILE* f = fopen(path, "r"); if (!f) { perror(path); return 1; }
  snprintf(path, sizeof path, "%s/outputs.bin", argv[2]);
  FILE* outFile = fopen(path, "wb"); if (!outFile) { perror(path); return 1; }
  char name[1024];
  int grid, block, smem, iters, save, nargs;
  cudaEvent_t e0, e1; CHECKRT(cudaEventCreate(&e0)); CHECKRT(cudaEventCreate(&e1));
  {
    // Baseline in the same run: a device-to-device copy of 1 GiB, read + write per launch.
    const size_t n = 1ull << 30; void *a, *b;
    CHECKRT(cudaMalloc(&a, n)); CHECKRT(cudaMalloc(&b, n)); CHECKRT(cudaMemset(a, 1, n));
    CHECKRT(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
    CHECKRT(cudaEventRecord(e0));
    for (int it = 0; it < 20; ++it) CHECKRT(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice));
    CHECKRT(cudaEventRecord(e1)); CHECKRT(cudaEventSynchronize(e1));
    float ms; CHECKRT(cudaEventElapsedTime(&ms, e0, e1));
    printf("copy %.3f %lld\n", ms * 1000.f / 20, (long long)(2 * n));
    cudaFree(a); cudaFree(b);
  }
  while (fscanf(f, "%1023s %d %d %d %d %d %d", name, &grid, &block, &smem, &iters, &save, &nargs) == 7) {
    std::vector<void*> ptrs(nargs); std::vector<long long> bytes(nargs); std::vector<int> isOut(nargs), widths(nargs);
    long long moved = 0;
    for (int a = 0; a < nargs; ++a) {
      char dir[8]; int width, kind; long long n; unsigned seed, mod;
      if (fscanf(f, "%7s %d %lld %u %d %u", dir, &width, &n, &seed, &kind, &mod) != 6) { fprintf(stderr, "bad case line for %s\n", name); return 1; }
      bytes[a] = (long long)width * n; widths[a] = width; isOut[a] = dir[0] == 'o'; moved += bytes[a];
      CHECKRT(cudaMalloc(&ptrs[a], bytes[a] > 0 ? bytes[a] : 1));
      if (isOut[a]) CHECKRT(cudaMemset(ptrs[a], 0xFF, bytes[a]));
      else fill<<<1024, 256>>>(ptrs[a], n, kind, seed, mod);
    }
    CHECKRT(cudaDeviceSynchronize());
    // A chain "k1:grid1+k2:grid2" launches several kernels in order on the same buffers.
    std::vector<CUfunction> fns; std::vector<int> grids;
    for (char* part = strtok(name, "+"); part; part = strtok(nullptr, "+")) {
      char* colon = strchr(part, ':');
      grids.push_back(colon ? atoi(colon + 1) : grid);
      if (colon) *colon = 0;
      CUfunction fn; CHECK(cuModuleGetFunction(&fn, mod, part));
      if (smem > 0) CHECK(cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem));
      fns.push_back(fn);
    }
    std::vector<void*> params(nargs);
    for (int a = 0; a < nargs; ++a) params[a] = &ptrs[a];
    auto launchAll = [&]() { for (size_t j = 0; j < fns.size(); ++j) CHECK(cuLaunchKernel(fns[j], grids[j], 1, 1, block, 1, 1, smem, 0, params.data(), nullptr)); };
    launchAll();
    CHECK(cuCtxSynchronize());
    for (int a = 0; a < nargs; ++a) if (save && isOut[a]) {
      std::vector<char> host(bytes[a]);
      CHECKRT(cudaMemcpy(host.data(), ptrs[a], bytes[a], cudaMemcpyDeviceToHost));
      if (save == 1) fwrite(host.data(), 1, bytes[a], outFile);
      else for (long long i = 0; i < bytes[a] / widths[a]; i += save) fwrite(host.data() + i * widths[a], 1, widths[a], outFile);
    }
    if (iters > 0) {
      // Ten launches before the timed ones. With one, a case timed first on its buffers ran 7-8%
      // slower than the same kernel and grid timed right after it (call L2); with ten 3-4% (L3), the
      // rest being where its buffers lie (H100 80GB HBM3, bench/RESULTS.md session 13).
      for (int w = 0; w < 10; ++w) launchAll();
      CHECKRT(cudaEventRecord(e0));
      for (int it = 0; it < iters; ++it) launchAll();
      CHECKRT(cudaEventRecord(e1)); CHECKRT(cudaEventSynchronize(e1));
      float ms; CHECKRT(cudaEventElapsedTime(&ms, e0, e1));
      printf("time %s %.3f %lld\n", name, ms * 1000.f / iters, moved);
      // Baseline at this case's size: a device-to-device copy moving as many bytes (half read, half
      // written), timed the same way: a kernel of a few MB pays a launch and a ramp a 1 GiB copy hides.
      const size_t half = (size_t)((moved / 2 + 255) / 256 * 256);
      void *ca, *cb;
      CHECKRT(cudaMalloc(&ca, half)); CHECKRT(cudaMalloc(&cb, half)); CHECKRT(cudaMemset(ca, 1, half));
      CHECKRT(cudaMemcpyAsync(cb, ca, half, cudaMemcpyDeviceToDevice));
      CHECKRT(cudaEventRecord(e0));
      for (int it = 0; it < iters; ++it) CHECKRT(cudaMemcpyAsync(cb, ca, half, cudaMemcpyDeviceToDevice));
      CHECKRT(cudaEventRecord(e1)); CHECKRT(cudaEventSynchronize(e1));
      CHECKRT(cudaEventElapsedTime(&ms, e0, e1));
      printf("copysize %s %.3f %lld\n", name, ms * 1000.f / iters, (long long)(2 * half));
      cudaFree(ca); cudaFree(cb);
    }
    for (int a = 0; a < nargs; ++a) cudaFree(ptrs[a]);
  }
  fclose(outFile);
  printf("done\n");
  return 0;
}
