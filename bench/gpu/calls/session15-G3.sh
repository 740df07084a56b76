#!/bin/sh
# Session 15 call G3: the own GEMM in CTA pairs sharing the W tile (cluster, multicast). First the harness on
# .gpu/G3/gc (`GEMM_SHAPES='flux single fused in|qwen img qkv|odd rows|flux txt qkv|qwen img mlp out'
# GEMM_VARIANTS=q192s4h,q192s4hc,q192s4n,q192s4nc npx tsx bench/gpu/gemm-own.ts prepare`), 150 s at most (a hang
# ends it); then, if every case ran, the models: `D=.gpu/G3 MODELS="flux qwen" VARIANTS="gx cx" sh session15-G1.sh`.
set -u
tar -xJf .gpu/G3/art.tar.xz -C /tmp
nvidia-smi --query-gpu=name,serial,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
mkdir -p $OUT/gc
timeout 150 /tmp/go /tmp/gc $OUT/gc > $OUT/gemm.txt 2>&1; rc=$?; echo "harness exit $rc"
cut -c1-220 $OUT/gemm.txt | tail -40
(cd $OUT && tar -cJf gc.tar.xz gc && rm -rf gc)
[ $rc = 0 ] || exit 1
mkdir -p .gpu/G3x && cp .gpu/G3/art.tar.xz .gpu/G3x/
D=.gpu/G3x MODELS="${MODELS:-flux qwen}" VARIANTS="gx cx" ROUNDS=${ROUNDS:-3} sh bench/gpu/calls/session15-G1.sh 2>&1 | grep -v "^\[SYNTH" | tail -30
