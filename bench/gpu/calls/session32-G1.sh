#!/bin/sh
# Session 32 call G1: what promoting the FP8 GEMM's sum every K block costs — the price of activations with a scale per
# row and 128-column block (DeepSeek-V3's 1 x 128 tiles), which would let the GEMM or attention that produces an
# activation code it in its own epilogue (Qwen-Image's GELU+Quantize, Flux.2's Concat+Quantize and the attention
# outputs' quantize launches gone), the consumer GEMM multiplying each block's sum by its row's block scale.
# .gpu/PR1 from `GEMM_SHAPES='^qwen img mlp out \(b2\)$|^flux single out$|^qwen img out \(b2\)$'
# GEMM_VARIANTS=q192s4n,f192s4n,p192s4x1n,p192s4x2n,p128s5x1n,q128s5n npx tsx bench/gpu/gemm-own.ts prepare .gpu/PR1`
# (q: the models' ping-pong; f: cooperative, fast accumulation; p..xN: cooperative, the block sum added into an fp32 sum
# every N K blocks of 128). Sustained 2 s at the cap (energy a launch), the whole run twice.
set -u
nvidia-smi --query-gpu=name,serial,power.limit,clocks.max.sm --format=csv,noheader
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for r in 1 2; do
  mkdir -p /tmp/s$r; GEMM_SUSTAIN_S=2 timeout 270 /tmp/go .gpu/PR1 /tmp/s$r > $OUT/gemm-$r.txt 2>&1; echo "run $r rc $?"
  grep -E "^\| [qfp]|sustained .* own" $OUT/gemm-$r.txt | cut -c1-160
done
tar -C /tmp -cJf $OUT/samples.tar.xz s1
