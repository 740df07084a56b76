#!/bin/sh
# Session 12 call G9: Nsight Compute on three row kernels of flux2_dev at 1024x1024 (from `npx tsx test/gpu/cases.ts
# prepare .gpu/rows row-kernels` at 0701760: the segmented LayerNorm+Modulate+Quantize [4096 + 512], its 4608-row
# single-stream twin, and the segmented Quantize [512 + 4096] as a kernel of the same bytes a row at 86%), one launch
# each after one warm-up, to see what holds LayerNorm+Modulate+Quantize at 80% of the copy.
set -u
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/cases /tmp/oc && cp .gpu/G9/cases/cases.txt /tmp/cases/ && xz -dc .gpu/G9/cases/kernels.cubin.xz > /tmp/cases/kernels.cubin
for k in ews_68e0c45f52989728 ew_b439e557068334ac ews_35d060aec8730b56; do
  timeout 120 /usr/local/cuda/bin/ncu -k regex:^$k -s 1 -c 1 --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section SchedulerStats --section WarpStateStats --section LaunchStats /tmp/h /tmp/cases /tmp/oc > $OUT/ncu-$k.txt 2>&1; echo "$k rc $?"
done
grep -hE "^  [a-z_]+.*\(|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Eligible Warps|Issued Warp|No Eligible|Stall|Theoretical Occupancy|Block Limit" $OUT/ncu-*.txt | head -80
