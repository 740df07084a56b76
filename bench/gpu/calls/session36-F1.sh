#!/bin/sh
# Session 36 call F1: the tiny pipeline references again, now with diffusers' own decoded image beside the latents
# (models/reference/make_reference.py writes image_rgb8.npy: the same pipeline call with output_type='np', made 8-bit as
# diffusers' numpy_to_pil does). Float32 on the CPU of the GPU host, a CUDA run for comparison, as session 35's Y6; every
# file an earlier call wrote must come back byte-identical (checked here after the call).
# carry: .gpu/F1/diffusers-src.tar.xz (diffusers' src at 58eb52c); the tiny models' .onnx.data stay in the tree.
set -u
mkdir -p /tmp/dsrc && tar -xJf .gpu/F1/diffusers-src.tar.xz -C /tmp/dsrc
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
PYTHONPATH=/tmp/dsrc/src DIFFUSERS_COMMIT=58eb52c0803ea9af3abec60841c2a093bdf1f951 timeout 560 python3 models/reference/make_reference.py $OUT/ref > $OUT/make.log 2>&1; echo "make rc $?"
tail -12 $OUT/make.log | cut -c1-300
