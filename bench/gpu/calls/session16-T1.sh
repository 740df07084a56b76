#!/bin/sh
# Session 16, call T1 (`D=.gpu/T1 sh THIS`): twin GEMMs in one launch of the own kernel (dc.GroupedGemm).
#  1. the GEMM harness on Qwen-Image's batch-2 image GEMMs alone (q192s4h) and with their 64-row text twin
#     in the same launch (q192s4ht64), the text GEMMs alone (cuBLASLt's time for them), and Flux.2's image
#     out / QKV with its 512-row text twin; samples kept ($OUT/samples-*.tar) for `gemm-own.ts check`;
#  2. the models compiled before (base, HEAD 925860b) and after (twin): outputs, then steps alternating
#     (bench/gpu/calls/session15-G1.sh; VARIANTS and PROFILE as it takes them, default "base twin" and 0).
set -u
D=${D:?}
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | tail -5
tar -xJf $D/gemm.tar.xz -C $D
for g in gq gf; do
  mkdir -p /tmp/samples-$g
  timeout 200 /tmp/go $D/$g /tmp/samples-$g > $OUT/gemm-$g.log 2>&1; echo "gemm $g rc $?"
  tar -cf $OUT/samples-$g.tar -C /tmp samples-$g
  grep -v "^sustained" $OUT/gemm-$g.log | cut -c1-260
done
D=$D MODELS="qwen flux" VARIANTS="${VARIANTS:-base twin}" ROUNDS=2 PROFILE=${PROFILE:-0} sh bench/gpu/calls/session15-G1.sh
