#!/bin/sh
# Session 15 call G4: the CTA-pair GEMM with the producer's tail in place of the closing cluster barrier (gc2:
# q192s4h and q192s4hc), and a diagnostic build of pairs without the multicast (gc3; its cases' W box wrongly
# edited to 192 rows: the copies overran their stage, it hung; G5 repeats it).
set -u
tar -xJf .gpu/G4/gc.tar.xz -C /tmp
nvidia-smi --query-gpu=name,serial,driver_version,clocks.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
for c in gc2 gc3; do timeout 100 /tmp/go /tmp/$c > $OUT/$c.txt 2>&1; echo "$c exit $?"; cut -c1-200 $OUT/$c.txt | grep "^|"; done
