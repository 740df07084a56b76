#!/bin/sh
# Session 26 call X2 (code at 3926a90; reverted after): the xq GEMM with the next wgmma's X pieces loaded a wgmma ahead (.gpu/X2/real), and two probes
# that locate its time (XQ_PROBE at prepare, not kept: noconv, the pieces' bits handed to the wgmma without coding;
# ss, the same loop with X read by descriptor as if coded, no register A). Flux.2's single out, short timings only.
set -u
D=${D:-.gpu/X2} PROBES=${PROBES:-real noconv ss}  # call X4: D=.gpu/X4 PROBES='real noconv nofence'
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for d in $PROBES; do
  mkdir -p $OUT/samples-$d
  timeout 150 /tmp/go $D/$d $OUT/samples-$d > $OUT/gemm-$d.txt 2>&1; echo "$d rc $?"
  grep -E "^\| |^Y hash" $OUT/gemm-$d.txt | cut -c1-160
done
cd $OUT && tar cf samples.tar samples-* && rm -rf samples-*
