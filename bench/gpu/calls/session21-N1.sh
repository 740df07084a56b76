#!/bin/sh
# Session 21 call N1: Nsight Compute on Qwen-Image's row kernels in the model (CFG batch 2, 32-token module, the
# artifact of call R1's new build, .gpu/R1s21): GELU+Quantize [2 x 4096 (+ 2 x 32), 12288] (133 us a launch in the
# profile, 2.3 TB/s) and LayerNorm+Modulate+Quantize [2 x 4096 (+ 64), 3072] (37.5 us, 2.0 TB/s): what bounds them.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
tar -xJf .gpu/R1s21/art.tar.xz -C /tmp
for k in ews_77014cd824332d63 ews_4c119d37805fa80b; do
  timeout 240 ncu --kernel-name $k --launch-skip 2 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis --section InstructionStats sh .gpu/rt/run.sh /tmp/art/qwen-new --synthetic-weights 42 > $OUT/ncu-$k.txt 2>&1
  echo "ncu $k exit $?"
  grep -E "Duration|Throughput|Stall|Warp Cycles|Issue Slot|Eligible|Issued Warp|Registers|Achieved Occupancy|Theoretical Occupancy|Block Limit|Pipe|MUFU|XU|Mem Busy|Max Bandwidth" $OUT/ncu-$k.txt | head -50
done
