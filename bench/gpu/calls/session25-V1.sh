#!/bin/sh
# Session 25 call V1: quantization by the reciprocal (x · fp8Reciprocal(s), templates/preamble.cuh dc_qdiv) checked
# on the GPU. 1. The row kernels (`npx tsx test/gpu/cases.ts prepare DIR row-kernels` at this tree, carried as
# .gpu/V25/rows-c: cases.txt, kernels.cubin.xz) through test/gpu/harness.cu; their outputs come back in 15 MB parts for
# `cases.ts check`. 2. Session 20's W1 (the compiled transformers against diffusers' bf16 models holding the same
# synthetic weights, one step): flux-{old,new} and qwen256-{old,new} in .gpu/V25/art.tar.xz (old: 8359691 / 4031fb9,
# new: this tree), with .gpu/H2's fills and diffusers source.
set -u
nvcc -O2 -o /tmp/h test/gpu/harness.cu -lcuda 2>&1 | grep -E "error"; [ -x /tmp/h ] || exit 1
mkdir -p /tmp/cR /tmp/oR && cp .gpu/V25/rows-c/cases.txt /tmp/cR/ && xz -dc .gpu/V25/rows-c/kernels.cubin.xz > /tmp/cR/kernels.cubin
timeout 240 /tmp/h /tmp/cR /tmp/oR > $OUT/rows-log.txt 2>&1; echo "rows harness rc $?"
(cd /tmp/oR && split -b 15M outputs.bin $OUT/rows-out.)
D=.gpu/V25 MODELS="flux qwen" sh bench/gpu/calls/session20-W1.sh
cd $OUT && tar cf same.tar same-*.json && rm same-*.json
