#!/bin/sh
# Session 9 call D15: where the SwiGLU-epilogue GEMM loses time: Nsight Compute on the plain ping-pong
# kernel and the SwiGLU one (Flux.2 4096 x 36864 x 6144), one launch each (the harness of that build).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
which ncu || ls /usr/local/cuda/bin | grep -i ncu
nvcc -O2 -std=c++17 -o /tmp/go .gpu/D15/gemm_own_glu.cu -lcuda -lcublasLt 2>&1 | grep -E "error"; [ -x /tmp/go ] || exit 1
for k in gemm8_cce8ff7a340aa639 gemm8_0b0dcc6a839d84ab; do
  timeout 200 ncu --kernel-name $k --launch-skip 1 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis_Tables --section LaunchStats /tmp/go .gpu/D15/flux > $OUT/ncu-$k.txt 2>&1
  echo "ncu $k exit $?"
  grep -E "Duration|Throughput|Stall|Warp Cycles|Issue Slot|Eligible|No Eligible|Bank Conflict|Registers|Shared Memory" $OUT/ncu-$k.txt | head -40
done
