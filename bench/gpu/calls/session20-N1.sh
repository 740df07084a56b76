#!/bin/sh
# Session 20 call N1: where the residual epilogue's +3% on Qwen-Image's attention out (8192 x 3072 x 3072 + the 64-row twin)
# goes: Nsight Compute on one launch each of the plain ping-pong and the residual one (the GEMM harness's cases in .gpu/S5,
# bench/gpu/gemm-own.ts prepare with GEMM_VARIANTS=q192s4ht64,q192s4ht64r).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error"; [ -x /tmp/go ] || exit 1
for k in $(awk '{print $2}' .gpu/S5/cases.txt); do
  timeout 200 ncu --kernel-name $k --launch-skip 1 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis_Tables --section LaunchStats /tmp/go .gpu/S5 > $OUT/ncu-$k.txt 2>&1
  echo "ncu $k exit $?"
  grep -E "Duration|Throughput|Stall|Warp Cycles|Issue Slot|Eligible|No Eligible|Bank Conflict|Registers|Shared Memory" $OUT/ncu-$k.txt | head -40
done
