#!/bin/sh
# Session 38 call X3: weights.bin's load from a cold page cache, the ways of call X2 in one run: bench/gpu/weights-load.ts
# --cold on an 8 GiB file (evicted before each load), two rounds: one thread reading alone (the disk's one-stream rate),
# separate (session 37: 8 hashing threads + uploadFile's own reads), handed on 8 and 12 threads. X2 on a 20.39 GB file:
# handed on 8 threads 14.2-14.7 s cold where dd read it in 12.9 s. Predicted: handed within 10-15% of one stream.
# carry: .gpu/rt (weights-load.mjs bundled by esbuild at this tree), tiny .onnx.data left behind.
set -u
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
timeout 400 /tmp/node .gpu/rt/weights-load.mjs --gib 8 --rounds 2 --threads 8,12 --cold 2>&1 | tee $OUT/weights-load-cold.txt
