#!/bin/sh
# Session 10 call E15 (at 5c22ef7): where the cluster variant loses half its speed: Nsight Compute on the plain ping-pong and the
# cluster-of-two kernel (Qwen-Image MLP in, 8192 x 12288 x 3072, scaled, bf16 bias), one launch each (E13's kernels).
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error"; [ -x /tmp/go ] || exit 1
for k in $(awk '{print $2}' .gpu/E15/g/cases.txt); do
  timeout 150 /usr/local/cuda/bin/ncu --kernel-name $k --launch-skip 1 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis_Tables --section LaunchStats /tmp/go .gpu/E15/g > $OUT/ncu-$k.txt 2>&1
  echo "ncu $k exit $?"
  grep -E "Duration|Throughput|Stall|Warp Cycles|Issue Slot|Eligible|No Eligible|Cluster|Registers|Grid Size" $OUT/ncu-$k.txt | head -40
done
