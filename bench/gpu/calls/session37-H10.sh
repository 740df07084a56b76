#!/bin/sh
# Session 37 call H10, run at b94372b (reverted in 2a4de06: after it host-overhead.ts has no worker-thread row): the PNG parts on worker threads (each part filtered, summed and deflated on one; the same bytes) on the
# GPU host's 16 cores: bench/host-overhead.ts --png-only --png-sweep --png-parts (bundled, 7 rounds) with its defaults both on
# libuv's pool and on the workers; then `npx bench --e2e --no-baseline` at this tree (both families, F3's artifacts), whose
# PNG stage was 24 / 21 ms in H9.
# Predicted: the workers 5-8 ms where libuv's pool takes 13-16 alone; the request's PNG stage down by as much; the same PNG bytes.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit + host-overhead.mjs, sharp.tar.xz left behind), .gpu/F3;
# tiny .onnx.data left behind.
set -u
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
timeout 200 /tmp/node .gpu/rt/host-overhead.mjs --png-only --png-sweep --png-parts --iters 7 2>&1 | tee $OUT/png-workers.txt | grep -E "defaults|alone"
DC_GEMM_TUNING=off NO_BASELINE=1 TIMEOUT_S=300 sh bench/gpu/e2e_pipelines.sh .gpu/F3
