#!/bin/sh
# Session 26 call X4 (code at 850d611; reverted after): the shared-memory xq GEMM (call X3) with its eight chunk loads ahead of the coding (.gpu/X4/real), and
# two probes (XQ_PROBE at prepare, not kept): noconv, the chunks stored uncoded; nofence, no proxy fence before the MMAs.
# Flux.2 single out, short timings only.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for d in real noconv nofence; do
  mkdir -p $OUT/samples-$d
  timeout 150 /tmp/go .gpu/X4/$d $OUT/samples-$d > $OUT/gemm-$d.txt 2>&1; echo "$d rc $?"
  grep -E "^\| |^Y hash" $OUT/gemm-$d.txt | cut -c1-160
done
cuobjdump -sass -fun gemm8_c3d543959be55b77 .gpu/X4/real/kernels.cubin > $OUT/sass-q192s5nc.txt 2>&1; wc -l $OUT/sass-q192s5nc.txt
cd $OUT && tar cf samples.tar samples-* && rm -rf samples-*
