#!/bin/sh
# Session 21 call H1: the amax epilogue (fuse-vquant) in the GEMM harness, sustained (GEMM_SUSTAIN_S=2): .gpu/H1a
# (plain and amax on Flux.2's single fused in and image QKV, Qwen-Image's QKV with its 64-row twin; amax read back
# before the chunk's store is issued) and .gpu/H1b (the amax cases with the read-back after the store's issue).
# Prepared with GEMM_SHAPES='flux single fused in$|flux img qkv|qwen img qkv \(b2\)' and GEMM_VARIANTS
# q192s4n,q192s4na,q192s4ht64,q192s4ht64a (H1b: the two amax ones), cases filtered to those lines.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for d in H1a H1b H1a; do
  mkdir -p $OUT/samples-$d
  GEMM_SUSTAIN_S=2 timeout 200 /tmp/go .gpu/$d $OUT/samples-$d > $OUT/gemm-$d.txt 2>&1; echo "$d rc $?"
  grep -E "^\| |sustained" $OUT/gemm-$d.txt | cut -c1-220
done
