#!/bin/sh
# Session 9 call D16: the SwiGLU epilogue computed in the accumulators' layout, only the outputs staged (64-byte
# swizzle) and stored by the tensor copy engine, the column scales from shared memory, against the plain
# ping-pong and cuBLASLt: Flux.2's MLP in-projections and the Qwen-Image shape (the harness of that build).
set -u
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv,noheader | tee $OUT/gpu.txt
nvcc -O2 -std=c++17 -o /tmp/go .gpu/D16/gemm_own_glu.cu -lcuda -lcublasLt 2>&1 | grep -E "error" ; [ -x /tmp/go ] || exit 1
timeout 150 /tmp/go .gpu/D16/flux > $OUT/log-flux.txt 2>&1; echo "flux harness exit $?"
timeout 60 /tmp/go .gpu/D16/qwen > $OUT/log-qwen.txt 2>&1; echo "qwen harness exit $?"
cat $OUT/log-flux.txt $OUT/log-qwen.txt | cut -c1-220
