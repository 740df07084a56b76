#!/bin/sh
# Session 10 call E12: the own GEMM (scaled ping-pong, bf16 bias) against cuBLASLt fast at the card's power cap:
# each run back to back for 4 s, twice, alternating (GEMM_SUSTAIN_S=4; NVML power and SM clock), on Flux.2's two
# single-block GEMMs and Qwen-Image's QKV and MLP in (`GEMM_SHAPES='flux single fused in|flux single out|qwen img
# qkv|qwen img mlp in' GEMM_VARIANTS=q192s4h npx tsx bench/gpu/gemm-own.ts prepare .gpu/E12/gemms`).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit,serial --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt -ldl 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
GEMM_SUSTAIN_S=4 timeout 200 /tmp/go .gpu/E12/gemms > $OUT/gemm.txt 2>&1; echo "harness exit $?"
cat $OUT/gemm.txt | cut -c1-220
