#!/bin/sh
# Session 37 call H5, at b012808 (a left output's host storage allocated only when read): bench/gpu/encode-stage.ts for Flux.2
# (8 requests, twice), then `npx serve` over session 36's F3 artifacts asked by test/gpu/serve_smoke.py (session 32's call S1
# script with SERVE_FLAGS='--max-queued 1 --storage /tmp/store'), now also checking each response's 8 step device times and
# /metrics' dc_step_device_seconds.
# Predicted: the text encode stage 14-19 ms in every request after the first (H4's 22-28 ms requests gone); every smoke check passes.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at b012808 + encode-stage.mjs, sharp.tar.xz included for WebP / JPEG), .gpu/F3;
# tiny .onnx.data left behind.
# The encode-stage rounds are bench/gpu/encode_stage_rounds.sh (as run they were inline: the same commands, the output file
# encode-stage.txt rather than encode-stage-run.txt, lines cut at 200 characters).
set -u
sh bench/gpu/encode_stage_rounds.sh 2 run=.gpu/rt/encode-stage.mjs
D=.gpu/F3 SERVE_FLAGS='--max-queued 1 --storage /tmp/store' sh bench/gpu/calls/session32-S1.sh 2>&1 | cut -c1-260
