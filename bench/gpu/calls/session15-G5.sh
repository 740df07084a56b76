#!/bin/sh
# Session 15 call G5: the CTA-pair GEMM with plain (.cta) remote arrives (gc2: q192s4h and q192s4hc,
# `GEMM_SHAPES='flux single fused in|qwen img qkv|odd rows' npx tsx bench/gpu/gemm-own.ts prepare`), and a
# diagnostic build of pairs without the multicast (gc3: each CTA loads its whole W tile in two halves,
# DC_CLUSTER_PLAIN=1 at prepare): what the pairing alone costs.
set -u
tar -xJf .gpu/G4/gc.tar.xz -C /tmp
nvidia-smi --query-gpu=name,serial,driver_version,clocks.sm,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
for c in gc2 gc3; do timeout 100 /tmp/go /tmp/$c > $OUT/$c.txt 2>&1; echo "$c exit $?"; cut -c1-200 $OUT/$c.txt | grep "^|"; done
