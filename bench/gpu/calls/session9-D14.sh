#!/bin/sh
# Session 9 call D14: the SwiGLU epilogue with its column scales copied into shared memory at the tile's
# start (cp.async) and the token scales loaded before the K loop, against the plain ping-pong and
# cuBLASLt: Flux.2's MLP in-projections, then the Qwen-Image shape that hung (short timeout).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go bench/gpu/gemm_own.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 150 /tmp/go .gpu/D14/flux > $OUT/log-flux.txt 2>&1; echo "flux harness exit $?"
timeout 60 /tmp/go .gpu/D14/qwen > $OUT/log-qwen.txt 2>&1; echo "qwen harness exit $?"
cat $OUT/log-flux.txt $OUT/log-qwen.txt | cut -c1-220
