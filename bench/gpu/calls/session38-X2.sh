#!/bin/sh
# Session 38 call X2: weights.bin read once (weights-check.ts HAND_OFF: the part-hashing threads' chunks handed to uploadFile)
# against session 37's separate reads, then call X1's full-size cold start again with it.
#   1. bench/gpu/weights-load.ts on an 8 GiB file in the page cache, two rounds: before / separate / handed on 8, 12 and 15
#      threads. Predicted: handed bound by hashing, about 1.04 GB/s a thread: 8 threads ~1.1 s (7-8 GB/s), more threads
#      up to the memory's limit; separate as H6 (1.8-1.9 s).
#   2. X1's Qwen-Image transformer (checkpoint, compile), loaded warm twice and cold twice (X1: 4.6-5.0 / 12.2-13.1 s), the
#      disk's own read rate by dd after an eviction, and one byte of weights.bin flipped (the load refused naming its part).
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this tree + weights-load.mjs bundled by esbuild, sharp.tar.xz left behind),
# .gpu/compiler, .gpu/X (as X1); tiny .onnx.data left behind.
# The commands as run were inline in this script; they are now bench/gpu/qwen_fullsize_load.sh's functions; the inline
# version differed only in what it printed and kept (X2's compile printed no wall time, make's line was cut at 200 characters).
set -u
W=/tmp/x2; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
nproc; df -h /tmp | tail -1
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
timeout 200 /tmp/node .gpu/rt/weights-load.mjs --gib 8 --rounds 2 --threads 8,12,15 2>&1 | tee $OUT/weights-load.txt
. bench/gpu/qwen_fullsize_load.sh
qwen_fullsize_artifact
load A1; load A2
evict $W/art/weights.bin; load B1
evict $W/art/weights.bin; load B2
evict $W/art/weights.bin; echo "dd, one stream from an evicted file:"; dd if=$W/art/weights.bin of=/dev/null bs=64M 2>&1 | tail -1
python3 -c "
f = open('$W/art/weights.bin', 'r+b'); f.seek(12345678901); b = f.read(1); f.seek(12345678901); f.write(bytes([b[0] ^ 1])); f.close(); print('flipped byte 12345678901 (part', 12345678901 // (256 << 20), ')')"
load F1
cp $W/load-A1.log $OUT/load-A1.log; cp $W/load-F1.log $OUT/load-F1.log
