#!/bin/sh
# Session 35 call Y6: reference data at a portrait size. models/reference/make_reference.py (now with 48x80 beside 80x48:
# diffusers' Flux2Pipeline and QwenImagePipeline with true CFG around the bundled tiny components, and each tiny network
# alone, float32 on the CPU of the GPU host, a CUDA run for comparison); every earlier case must come back byte-identical.
# carry: .gpu/E32/diffusers-src.tar.xz (diffusers' src at 58eb52c); the tiny models' .onnx.data stay in the tree.
set -u
mkdir -p /tmp/dsrc && tar -xJf .gpu/E32/diffusers-src.tar.xz -C /tmp/dsrc
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
PYTHONPATH=/tmp/dsrc/src DIFFUSERS_COMMIT=58eb52c0803ea9af3abec60841c2a093bdf1f951 timeout 560 python3 models/reference/make_reference.py $OUT/ref > $OUT/make.log 2>&1; echo "make rc $?"
tail -12 $OUT/make.log | cut -c1-300
