#!/bin/sh
# Session 36 calls F4 and F5, each on a fresh machine: call F3 (`npx bench --e2e --no-baseline` at 1024x1024, both families,
# F3's pipeline artifacts) with the cuBLASLt algorithms no longer timed at load (each shape runs the heuristic's first
# algorithm; runtime/gpu/tuning-cache.ts). Predicted: the two calls give the same PNG bytes for each family (timing chose
# Qwen-Image's differently on Y10's card and F3's), and requests within 0.4 ms of F3's (what the timings saved).
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit, sharp.tar.xz left behind), .gpu/F3; tiny .onnx.data left behind.
# The body is bench/gpu/e2e_pipelines.sh (as run, $DC_GEMM_TUNING was unset, the same as "off" now; timeout 400 s).
set -u
DC_GEMM_TUNING=off NO_BASELINE=1 TIMEOUT_S=400 sh bench/gpu/e2e_pipelines.sh .gpu/F3
