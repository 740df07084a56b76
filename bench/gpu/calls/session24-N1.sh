#!/bin/sh
# Session 24 call N1: (1) the pack harness (.gpu/P7: V's row pass skipped where its staged rows are its values, on top of
# 62101d4; base = 62101d4's pack); (2) Nsight Compute on Qwen-Image's three row-kernel families as the model runs them
# (qwen-new of .gpu/S24, eager first run): where the step's element-wise time goes at the card's clock.
set -u
C=.gpu/P7 sh bench/gpu/calls/session24-P1.sh 2>&1 | grep -E "^time|^device|differing|harness rc"
tar -xJf .gpu/S24/art.tar.xz -C /tmp
NCU=/usr/local/cuda/bin/ncu
for k in ews_f1fd5fc310aa00a5 ews_a3b7d45f56ffdf2a ews_3e9c3239b6280fbd; do
  timeout 150 $NCU --kernel-name $k --launch-count 1 --section SpeedOfLight --section WarpStateStats --section LaunchStats --section Occupancy \
    sh .gpu/rt/run.sh /tmp/art/qwen-new --synthetic-weights 42 > $OUT/ncu-$k.txt 2>&1; echo "ncu $k rc $?"
  grep -E "Duration|SM Frequency|DRAM Through|Compute \(SM\)|Warp Cycles Per Issued|Executed Instructions |Registers Per|Achieved Occ|Grid Size|Block Size" $OUT/ncu-$k.txt
done
