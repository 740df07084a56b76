#!/bin/sh
# Session 37 call H8 (the GPU host's CPU only): the PNG encoder's parts on the GPU host's 16 cores. bench/host-overhead.ts
# --png-only --png-sweep --png-parts (bundled), 7 rounds, with libuv's pool at its default 4 threads and at 16
# (UV_THREADPOOL_SIZE set before Node starts: the parts deflate on that pool).
# Predicted: with 4 threads parts beyond 4 only queue (the server's 17-25 ms PNG stage); with 16, 12-16 parts near 8 ms.
# carry: .gpu/rt (host-overhead.mjs; node.xz).
set -u
nvidia-smi --query-gpu=name,serial --format=csv,noheader | tee $OUT/gpu.txt
nproc; grep -m1 "model name" /proc/cpuinfo
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
for t in 4 16; do
  echo "--- UV_THREADPOOL_SIZE=$t"
  UV_THREADPOOL_SIZE=$t timeout 200 /tmp/node .gpu/rt/host-overhead.mjs --png-only --png-sweep --png-parts --iters 7 2>&1 | tee $OUT/png-parts-uv$t.txt | tail -22
done
