#!/bin/sh
# Session 26 call X3 (code at 850d611; reverted after): the own GEMM quantizing its bf16 X on load, second form (gemm.ts xq: the consumer codes each 64-deep
# K block of X into an e4m3 tile in shared memory, one of two, which its wgmma read by descriptor; 4-6 stages of 64) against
# the plain FP8 GEMM on Flux.2's single-block out projection and Qwen-Image's MLP out. .gpu/X3/{flux,qwen} from
# `npx tsx bench/gpu/gemm-own.ts prepare` (GEMM_SHAPES / GEMM_VARIANTS in RESULTS.md); samples for `gemm-own.ts check`,
# sustained 2 s at the cap.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for d in flux qwen; do
  mkdir -p $OUT/samples-$d
  GEMM_SUSTAIN_S=2 timeout 250 /tmp/go .gpu/X3/$d $OUT/samples-$d > $OUT/gemm-$d.txt 2>&1; echo "$d rc $?"
  grep -E "^\| |sustained|^Y hash" $OUT/gemm-$d.txt | cut -c1-220
done
cd $OUT && tar cf samples.tar samples-* && rm -rf samples-*
