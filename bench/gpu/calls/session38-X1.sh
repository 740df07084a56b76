#!/bin/sh
# Session 38 call X1: a cold start at full size, measured. Qwen-Image's transformer from a real safetensors checkpoint
# (bench/gpu/checkpoint_check.py make: diffusers' QwenImageTransformer2DModel at its full config, its own seeded
# initialisation, save_pretrained, 40.9 GB), compiled on the host by this tree's bundled compiler with --weights (as session
# 33's R1), then
# loaded by run-cli (one replay, its loadSeconds in the JSON):
#   A  warm: weights.bin in the page cache, as right after a compile or a recent load (part hashes on worker threads while
#      the file streams through two page-locked buffers, session 37);
#   B  cold: weights.bin dropped from the page cache first (posix_fadvise DONTNEED), as on a fresh boot of a machine;
#   C  warm, the manifest's weights.parts removed: an artifact from before session 37, weights.bin hashed whole on one thread,
#      then the same upload.
# Predicted (session 37's H6 rates, 8 GiB file): A about 4.5 s for 20.39 GB; C about 20 s of hashing (1.04 GB/s) + 4.5; B the
# disk's read rate (not known). Only single H200s are lent (64 GiB disk): 40.9 GB of checkpoint + 20.4 GB of weights.bin fit,
# Flux.2's 64 + 32 GB do not; the call stops before the checkpoint if less than 60 GiB is free.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this tree, sharp.tar.xz left behind), .gpu/compiler, .gpu/X (diffusers'
# src/diffusers as diffusers-src.tar.xz; models/full/qwen_image.onnx.br decompressed as qwen_image/model.onnx); tiny
# .onnx.data left behind.
# The commands as run were inline in this script; they are now bench/gpu/qwen_fullsize_load.sh's functions; the inline
# version differed only in what it printed and kept (X1's copied its compile log and each load's files to $OUT, printed two lines of the make's output, and had
# no error lines).
set -u
W=/tmp/x1; mkdir -p $W
nvidia-smi --query-gpu=name,serial,driver_version,clocks.max.sm,power.limit --format=csv,noheader | head -1 | tee $OUT/gpu.txt
nproc; free -g | head -2; df -h /tmp | tail -1
. bench/gpu/qwen_fullsize_load.sh
qwen_fullsize_artifact
ls -la $W/art | tee $OUT/artifact.txt
cached $W/art/weights.bin; load A1
cached $W/art/weights.bin; load A2
evict $W/art/weights.bin; cached $W/art/weights.bin; load B1
evict $W/art/weights.bin; cached $W/art/weights.bin; load B2
cp $W/art/manifest.json $W/manifest-parts.json
python3 -c "
import json; p='$W/art/manifest.json'; m=json.load(open(p)); n=len(m['weights'].pop('parts')['sha256']); json.dump(m, open(p, 'w')); print('parts removed:', n)"
cached $W/art/weights.bin; load C1
cp $W/manifest-parts.json $W/art/manifest.json
evict $W/art/weights.bin; cached $W/art/weights.bin; load B3
