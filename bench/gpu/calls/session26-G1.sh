#!/bin/sh
# Session 26 call G1: the tile order's group of row tiles on the deep-K GEMMs (Flux.2's single out 4608x6144x24576 and
# image MLP out 4096x6144x18432, residual epilogue), where no group's X rows stay in the L2 from one wave to the next:
# groupRows gives 8 (a wave of 132 tiles is then 8 row tiles x 16.5 column tiles); 12 and 16 make the waves squarer
# (fewer distinct X and W bytes a wave by the tiles' sizes), 36 is every row tile. .gpu/G1 from `GEMM_SHAPES='^flux single
# out$|^flux img mlp out$' GEMM_VARIANTS=q192s4nr,q192s4ng12r,q192s4ng16r,q192s4ng36r npx tsx bench/gpu/gemm-own.ts prepare
# .gpu/G1`; sustained 3 s at the cap (energy a launch), the whole run twice.
set -u
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -i error
for r in 1 2; do
  GEMM_SUSTAIN_S=3 timeout 280 /tmp/go .gpu/G1 > $OUT/gemm-$r.txt 2>&1; echo "run $r rc $?"
  grep -E "^\| q|sustained .* own" $OUT/gemm-$r.txt | cut -c1-150
done
