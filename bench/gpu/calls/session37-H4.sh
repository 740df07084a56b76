#!/bin/sh
# Session 37 call H4: Flux.2's prompt embeddings handed from the text encoder to the transformer on the device (dfc7a7c) against
# the host round trip before it (c08aa17), in one call: bench/gpu/encode-stage.ts bundled at each commit (encode-stage-base.mjs
# at c08aa17), 8 requests a run, alternating base / new / base / new; then `npx bench --e2e --no-baseline` at dfc7a7c (both
# families; the PNG bytes against H1's).
# Predicted: text encode 23-25 -> 14-16 ms in the first requests, 16-17 -> 14-15 after; the first step's device time ~1.3 ms less
# (the 15.7 MB upload leaves the stream); the same PNG bytes (0591d4dd5d29..., 721c5f497b1f...).
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at dfc7a7c + both encode-stage bundles, sharp.tar.xz left behind), .gpu/F3;
# tiny .onnx.data left behind.
# The encode-stage rounds are bench/gpu/encode_stage_rounds.sh (as run they were these lines inline, the same commands).
set -u
sh bench/gpu/encode_stage_rounds.sh 2 base=.gpu/rt/encode-stage-base.mjs new=.gpu/rt/encode-stage.mjs
DC_GEMM_TUNING=off NO_BASELINE=1 TIMEOUT_S=300 sh bench/gpu/e2e_pipelines.sh .gpu/F3
grep -E "denoising steps inside|Inside the requests" $OUT/bench-e2e.md | cut -c1-400
