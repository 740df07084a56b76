#!/bin/sh
# Session 25 calls K1, K2: stream-K in the own GEMM (gemm.ts streamK: the last wave's tiles split over K among every
# CTA, a split tile summed in one chain of MMAs). The GEMM harness on Flux.2's and Qwen-Image's shapes whose tiles
# leave the last wave part-empty: .gpu/K1/new-{r,n} (this tree: variants with and without the k suffix) and
# .gpu/K1/base-{r,n} (4031fb9's kernels, the same variants without k), prepared with `npx tsx
# bench/gpu/gemm-own.ts prepare` (GEMM_SHAPES / GEMM_VARIANTS in the session's notes); alternating base / new,
# samples for `gemm-own.ts check`, sustained 2 s at the cap. Stream-K was reverted after these calls: they ran at fa88c8f.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for d in base-r new-r base-n new-n; do
  mkdir -p $OUT/samples-$d
  GEMM_SUSTAIN_S=2 timeout 200 /tmp/go .gpu/K1/$d $OUT/samples-$d > $OUT/gemm-$d.txt 2>&1; echo "$d rc $?"
  grep -E "^\| |sustained|^Y hash" $OUT/gemm-$d.txt | cut -c1-200
done
cd $OUT && tar cf samples.tar samples-* && rm -rf samples-*
