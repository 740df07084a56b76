#!/bin/sh
# Session 37 call H7: what a request's host <-> device copies cost by size and kind of host memory (bench/gpu/host-copies.ts):
# reused and fresh pageable Buffers, a page-locked buffer, and a page-locked bounce buffer with a host memcpy, 1-16 MiB.
# Predicted: pageable H2D 2-3.5 GB/s (H4's 15.7 MB upload took ~8.6 ms of the stream), page-locked 20+ GB/s, the bounce
# buffer within 2x of page-locked; fresh pageable buffers slower than reused ones (page faults).
# carry: .gpu/rt (host-copies.mjs; node.xz).
set -u
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | tee $OUT/gpu.txt
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
timeout 120 /tmp/node .gpu/rt/host-copies.mjs 2>&1 | tee $OUT/host-copies.txt
