#!/bin/sh
# Session 9 call D13: the own FP8 GEMM with the SwiGLU epilogue (g192s4) against the plain ping-pong (q192s4) and cuBLASLt on the MLP in-projection shapes.
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 200 /tmp/go .gpu/D13/gemm > $OUT/log.txt 2>&1; echo "harness exit $?"
cuobjdump -sass .gpu/D13/gemm/kernels.cubin > /tmp/sass.txt 2>&1
awk '/Function :/{f=$3} /QGMMA|UTMALDG|LDL|STL|SYNCS.ARRIVE|WARPGROUP.ARRIVE/{for(i=1;i<=NF;i++) if($i ~ /^(QGMMA|UTMALDG|LDL|STL|SYNCS|WARPGROUP)/){split($i,a,".");c[f" "a[1]]++; break}} END{for(k in c) print k, c[k]}' /tmp/sass.txt | sort | head -12 > $OUT/sass.txt
cat $OUT/log.txt | cut -c1-220
