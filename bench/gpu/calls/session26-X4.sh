#!/bin/sh
# Session 26 call X4 (code at 850d611; reverted after): the shared-memory xq GEMM (call X3) with its eight chunk loads ahead of the coding (.gpu/X4/real), and
# two probes (XQ_PROBE at prepare, not kept): noconv, the chunks stored uncoded; nofence, no proxy fence before the MMAs.
# Flux.2 single out, short timings only.
set -u
D=.gpu/X4 PROBES='real noconv nofence' sh bench/gpu/calls/session26-X2.sh
cuobjdump -sass -fun gemm8_c3d543959be55b77 .gpu/X4/real/kernels.cubin > $OUT/sass-q192s5nc.txt 2>&1; wc -l $OUT/sass-q192s5nc.txt
