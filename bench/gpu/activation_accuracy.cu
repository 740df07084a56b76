// Accuracy of the preamble's fast sigmoid and tanh-GELU (templates/preamble.cuh dc_sigmoid,
// dc_gelu_tanh: ex2.approx / rcp.approx) on the GPU, against float64 references, beside the IEEE
// float formulas they replaced (expf + division; 0.5·x·(1 + tanhf(u))). 2^22 points over [-30, 30];
// GELU's relative error over |x| < 8 (beyond, its value is below 1e-20 or equal to x). GELU's
// reference is x / (1 + e^-2u), free of the cancellation in 1 + tanh(u) for u < 0.
// Build and run on the GPU host: nvcc -O2 -arch=sm_90a -I templates -o /tmp/aa bench/gpu/activation_accuracy.cu && /tmp/aa
#include <cstdio>
#include <cmath>
#include "preamble.cuh"
__global__ void measure(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float x = -30.f + 60.f * i / n;
  const double sref = 1.0 / (1.0 + exp(-(double)x));
  const double u = 0.79788456080286536 * ((double)x + 0.044715 * (double)x * x * x);
  const double gref = x / (1.0 + exp(-2.0 * u));
  const float sieee = 1.f / (1.f + expf(-x));
  const float gieee = 0.5f * x * (1.f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  const double ga = fabs(gref) > 1e-30 ? fabs(gref) : 1e-30;
  out[5 * i] = fabs(dc_sigmoid(x) - sref) / sref;
  out[5 * i + 1] = fabs(sieee - sref) / sref;
  out[5 * i + 2] = fabs(dc_gelu_tanh(x) - gref) / ga;
  out[5 * i + 3] = fabs(gieee - gref) / ga;
  out[5 * i + 4] = x;
}
int main() {
  const int n = 1 << 22;
  float* d;
  cudaMalloc(&d, 5 * (size_t)n * sizeof(float));
  measure<<<n / 256, 256>>>(d, n);
  float* h = new float[5 * (size_t)n];
  cudaMemcpy(h, d, 5 * (size_t)n * sizeof(float), cudaMemcpyDeviceToHost);
  double worst[4] = {0, 0, 0, 0};
  float at[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < 4; ++j) {
      const float x = h[5 * i + 4];
      if ((j < 2 || fabsf(x) < 8.f) && h[5 * i + j] > worst[j]) { worst[j] = h[5 * i + j]; at[j] = x; }
    }
  printf("max relative error: sigmoid fast %.3e (x = %g), IEEE formula %.3e (x = %g); tanh-GELU (|x| < 8) fast %.3e (x = %g), IEEE formula %.3e (x = %g)\n",
         worst[0], at[0], worst[1], at[1], worst[2], at[2], worst[3], at[3]);
  return 0;
}
