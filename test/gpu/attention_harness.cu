// GPU harness of the attention kernels (runs on the GPU host; Node is not there). Driven by
// CASES/cases.txt, written by test/gpu/attention.ts; one op per line:
//   case NAME                                   start a case (buffers are per case)
//   buf ID BYTES                                cudaMalloc
//   fill ID KIND COUNT SEED AMP                 element i = dc_uniform(i, SEED) * AMP (harness_common.cuh)
//   runs ID KIND OFFSET COUNT STRIDE LEN SEED AMP   overwrite COUNT runs of LEN elements (garbage)
//   upload ID FILE                              copy a file of CASES into the buffer (masks)
//   poison ID                                   0xFF bytes (NaN in every float type)
//   launch KERNEL GRID BLOCK SMEM NARGS ID...   launch once now (arguments are buffers)
//   unwritten ID KIND COUNT                     print how many elements are still NaN
//   gather ID WIDTH FILE                        append the elements at the uint64 indices in FILE to OUT/outputs.bin
//   save ID                                     append the whole buffer to OUT/outputs.bin
//   same ID ID                                  print "same CASE ID ID <differing bytes>" (test/gpu/attention-pack.ts)
//   time LABEL ITERS FIRST LAST                 replay this case's launches FIRST..LAST ITERS times, 5 times
//                                               over; the median per replay is printed; with ENERGY_S
//                                               set, then ENERGY_S seconds back to back: "energy CASE
//                                               LABEL <J a replay> J <W> W <MHz> MHz <us> us" (NVML)
//   end                                         free the case's buffers
// KIND: 0 float, 2 bf16, 3 half, 7 bool. Prints "time CASE LABEL <us per replay>" and
// "unwritten CASE ID <n>". Build: nvcc -O2 -o ah test/gpu/attention_harness.cu -lcuda
// Usage: ah CASES_DIR OUT_DIR [CUBIN (default kernels.cubin)] [OUTPUTS (default outputs.bin)]
#include "harness_common.cuh"
#include "nvml.cuh"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <map>
#include <string>
#include <vector>



__device__ inline void put(void* p, long long i, int kind, float v) {
  switch (kind) {
    case 0: ((float*)p)[i] = v; break;
    case 2: ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(v); break;
    case 3: ((__half*)p)[i] = __float2half_rn(v); break;
    default: ((uint8_t*)p)[i] = v != 0.f; break;
  }
}
// Runs of `len` elements `stride` apart from `offset` (a plain fill: one run over everything).
__global__ void fill_runs(void* p, int kind, long long offset, long long count, long long stride, long long len, uint32_t seed, float amp) {
  const long long n = count * len;
  for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < n; k += (long long)gridDim.x * blockDim.x) {
    const long long i = offset + (k / len) * stride + k % len;
    put(p, i, kind, dc_uniform((uint32_t)i, seed) * amp);
  }
}
__global__ void count_nan(const void* p, int kind, long long n, unsigned long long* out) {
  unsigned long long c = 0;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const float v = kind == 0 ? ((const float*)p)[i] : kind == 2 ? __bfloat162float(((const __nv_bfloat16*)p)[i]) : __half2float(((const __half*)p)[i]);
    c += v != v;
  }
  atomicAdd(out, c);
}

struct Launch { CUfunction fn; int grid, block, smem; std::vector<int> args; };

static std::vector<char> readFile(const char* dir, const char* name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE* f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  std::vector<char> data(n);
  if (n && fread(data.data(), 1, n, f) != (size_t)n) { perror(path); exit(1); }
  fclose(f);
  return data;
}

int main(int argc, char** argv) {
  if (argc < 3) { fprintf(stderr, "usage: ah CASES_DIR OUT_DIR [CUBIN in CASES_DIR] [OUTPUTS name]\n"); return 2; }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", argv[1], argc > 3 ? argv[3] : "kernels.cubin");
  CUmodule mod = dc_open(path);
  snprintf(path, sizeof path, "%s/cases.txt", argv[1]);
  FILE* f = fopen(path, "r"); if (!f) { perror(path); return 1; }
  snprintf(path, sizeof path, "%s/%s", argv[2], argc > 4 ? argv[4] : "outputs.bin");
  FILE* outFile = fopen(path, "wb"); if (!outFile) { perror(path); return 1; }
  cudaEvent_t e0, e1; CHECKRT(cudaEventCreate(&e0)); CHECKRT(cudaEventCreate(&e1));
  unsigned long long* dCount; CHECKRT(cudaMalloc(&dCount, sizeof(unsigned long long)));
  std::map<int, void*> bufs;
  std::map<int, long long> sizes;
  std::vector<Launch> launches;
  char caseName[256] = "";
  std::string lastAttn;
  char op[64];
  while (fscanf(f, "%63s", op) == 1) {
    std::string o(op);
    if (o == "case") { fscanf(f, "%255s", caseName); launches.clear(); }
    else if (o == "buf") {
      int id; long long bytes; fscanf(f, "%d %lld", &id, &bytes);
      CHECKRT(cudaMalloc(&bufs[id], bytes)); sizes[id] = bytes;
    } else if (o == "fill" || o == "runs") {
      int id, kind; long long offset = 0, count, stride = 0, len = 1; unsigned seed; float amp;
      if (o == "fill") { fscanf(f, "%d %d %lld %u %f", &id, &kind, &count, &seed, &amp); len = count; count = 1; }
      else fscanf(f, "%d %d %lld %lld %lld %lld %u %f", &id, &kind, &offset, &count, &stride, &len, &seed, &amp);
      fill_runs<<<2048, 256>>>(bufs[id], kind, offset, count, stride, len, seed, amp);
      CHECKRT(cudaGetLastError());
    } else if (o == "upload") {
      int id; char name[1024]; fscanf(f, "%d %1023s", &id, name);
      std::vector<char> data = readFile(argv[1], name);
      CHECKRT(cudaMemcpy(bufs[id], data.data(), data.size(), cudaMemcpyHostToDevice));
    } else if (o == "poison") {
      int id; fscanf(f, "%d", &id);
      CHECKRT(cudaMemset(bufs[id], 0xFF, sizes[id]));
    } else if (o == "launch") {
      Launch l; char name[256]; int nargs;
      fscanf(f, "%255s %d %d %d %d", name, &l.grid, &l.block, &l.smem, &nargs);
      for (int a = 0; a < nargs; ++a) { int id; fscanf(f, "%d", &id); l.args.push_back(id); }
      CHECK(cuModuleGetFunction(&l.fn, mod, name));
      if (!strncmp(name, "attn_", 5)) lastAttn = name;
      if (l.smem > 0) CHECK(cuFuncSetAttribute(l.fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, l.smem));
      CHECKRT(cudaDeviceSynchronize());
      std::vector<void*> ptrs, params;
      for (int id : l.args) ptrs.push_back(bufs[id]);
      for (auto& p : ptrs) params.push_back(&p);
      CHECK(cuLaunchKernel(l.fn, l.grid, 1, 1, l.block, 1, 1, l.smem, 0, params.data(), nullptr));
      CHECK(cuCtxSynchronize());
      launches.push_back(l);
    } else if (o == "unwritten") {
      int id, kind; long long n; fscanf(f, "%d %d %lld", &id, &kind, &n);
      CHECKRT(cudaMemset(dCount, 0, sizeof(unsigned long long)));
      count_nan<<<1024, 256>>>(bufs[id], kind, n, dCount);
      unsigned long long c; CHECKRT(cudaMemcpy(&c, dCount, sizeof c, cudaMemcpyDeviceToHost));
      printf("unwritten %s %d %llu\n", caseName, id, c);
    } else if (o == "gather") {
      int id, width; char name[1024]; fscanf(f, "%d %d %1023s", &id, &width, name);
      std::vector<char> idx = readFile(argv[1], name);
      std::vector<char> host(sizes[id]);
      CHECKRT(cudaMemcpy(host.data(), bufs[id], sizes[id], cudaMemcpyDeviceToHost));
      const uint64_t* ix = (const uint64_t*)idx.data();
      for (size_t k = 0; k < idx.size() / 8; ++k) fwrite(host.data() + ix[k] * width, 1, width, outFile);
    } else if (o == "save") {
      int id; fscanf(f, "%d", &id);
      std::vector<char> host(sizes[id]);
      CHECKRT(cudaMemcpy(host.data(), bufs[id], sizes[id], cudaMemcpyDeviceToHost));
      fwrite(host.data(), 1, sizes[id], outFile);
    } else if (o == "same") {
      int a, b; fscanf(f, "%d %d", &a, &b);
      long long n = std::min(sizes[a], sizes[b]), diff = sizes[a] == sizes[b] ? 0 : -1;
      std::vector<unsigned char> ha(n), hb(n);
      CHECKRT(cudaMemcpy(ha.data(), bufs[a], n, cudaMemcpyDeviceToHost));
      CHECKRT(cudaMemcpy(hb.data(), bufs[b], n, cudaMemcpyDeviceToHost));
      if (diff == 0) for (long long i = 0; i < n; ++i) diff += ha[i] != hb[i];
      printf("same %s %d %d %lld\n", caseName, a, b, diff);
    } else if (o == "time") {
      char label[256]; int iters, first, last; fscanf(f, "%255s %d %d %d", label, &iters, &first, &last);
      auto replay = [&]() {
        for (int k = first; k <= last; ++k) {
          Launch& l = launches[k];
          std::vector<void*> ptrs, params;
          for (int id : l.args) ptrs.push_back(bufs[id]);
          for (auto& p : ptrs) params.push_back(&p);
          CHECK(cuLaunchKernel(l.fn, l.grid, 1, 1, l.block, 1, 1, l.smem, 0, params.data(), nullptr));
        }
      };
      for (int w = 0; w < 3; ++w) replay();
      float ms[5];
      for (int rep = 0; rep < 5; ++rep) {
        CHECKRT(cudaEventRecord(e0));
        for (int it = 0; it < iters; ++it) replay();
        CHECKRT(cudaEventRecord(e1)); CHECKRT(cudaEventSynchronize(e1));
        CHECKRT(cudaEventElapsedTime(&ms[rep], e0, e1));
      }
      CHECK(cuCtxSynchronize());
      std::sort(ms, ms + 5);
      printf("time %s %s %.3f\n", caseName, label, ms[2] * 1000.f / iters);
      {
        // The ping-pong turn's clock() marks of the last replay, when the kernel carries them (bench/gpu/calls/session39-trace.py).
        CUdeviceptr tp; size_t tsz; std::string tn = lastAttn + "_trace";
        if (cuModuleGetGlobal(&tp, &tsz, mod, tn.c_str()) == CUDA_SUCCESS) {
          std::vector<unsigned> tr(tsz / 4); cuMemcpyDtoH(tr.data(), tp, tsz);
          for (int w = 0; w < 2; ++w) for (int j = 0; j < 32; ++j) {
            printf("trace %s wg%d j%d", caseName, w, j);
            for (int k = 0; k < 7; ++k) printf(" %u", tr[w * 256 + j * 8 + k]);
            printf("\n");
          }
        }
      }
      {
        // A unit-level timeline of the last replay, when the kernel carries one (bench/gpu/calls/session41-utrace.py):
        // written raw to OUT/utrace-CASE.bin.
        CUdeviceptr tp; size_t tsz; std::string tn = lastAttn + "_utrace";
        if (cuModuleGetGlobal(&tp, &tsz, mod, tn.c_str()) == CUDA_SUCCESS) {
          std::vector<char> tr(tsz); cuMemcpyDtoH(tr.data(), tp, tsz);
          char tpath[1024]; snprintf(tpath, sizeof tpath, "%s/utrace-%s.bin", argv[2], caseName);
          if (FILE* tf = fopen(tpath, "wb")) { fwrite(tr.data(), 1, tr.size(), tf); fclose(tf); }
        }
      }
      if (const char* sustain = getenv("ENERGY_S")) {
        // Back to back for ENERGY_S seconds after one second of warming: joules a replay from NVML's
        // energy counter over the window, the mean board power, the SM clock at its end.
        static Nvml nvml; static bool nvmlOk = nvml.open();
        const float perReplayMs = ms[2] / iters;
        const int warm = (int)(1000.f / perReplayMs) + 1, n = (int)(atof(sustain) * 1000.f / perReplayMs) + 1;
        for (int i = 0; i < warm; ++i) replay();
        CHECK(cuCtxSynchronize());
        const unsigned long long mj0 = nvmlOk ? nvml.millijoules() : 0;
        CHECKRT(cudaEventRecord(e0));
        for (int i = 0; i < n; ++i) replay();
        CHECKRT(cudaEventRecord(e1)); CHECKRT(cudaEventSynchronize(e1));
        const unsigned mhz = nvmlOk ? nvml.smMHz() : 0;
        const unsigned long long mj1 = nvmlOk ? nvml.millijoules() : 0;
        float win; CHECKRT(cudaEventElapsedTime(&win, e0, e1));
        if (nvmlOk) printf("energy %s %s %.4f J %.0f W %u MHz %.3f us (%d replays)\n", caseName, label, (mj1 - mj0) / 1000.0 / n, (mj1 - mj0) / (double)win, mhz, win * 1000.f / n, n);
        else printf("energy %s %s not measured (NVML unavailable)\n", caseName, label);
      }
    } else if (o == "end") {
      for (auto& kv : bufs) cudaFree(kv.second);
      bufs.clear(); sizes.clear();
      printf("done %s\n", caseName);
      fflush(stdout);
    } else { fprintf(stderr, "unknown op %s\n", op); return 1; }
  }
  fclose(outFile);
  printf("all done\n");
  return 0;
}
