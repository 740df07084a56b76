#!/bin/sh
# Session 39, call Z1 (GPU host): `npx bench --e2e --no-baseline` at 1024x1024 at 8e902a1 (Qwen-Image's FP8 P·V kernels
# handing over at their maxima), the heuristic's GEMM algorithms (DC_GEMM_TUNING=off): the PNG bytes against sessions 36-38's
# and the stages' times. Pipelines compiled on the CPU machine (`npx compile models/flux2/full.pipeline.json --out
# .gpu/Z/flux2-dev`, qwen_image -> .gpu/Z/qwen-image, tarred as pipe-MODEL.tar.xz); carry .gpu/rt and .gpu/Z/pipe-*.tar.xz.
set -u
DC_GEMM_TUNING=off NO_BASELINE=1 TIMEOUT_S=300 sh bench/gpu/e2e_pipelines.sh .gpu/Z
