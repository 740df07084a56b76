#!/bin/sh
# Session 37 call H9: `npx bench --e2e --no-baseline` at 1024x1024 at the session's final tree (the runtime as packed at this
# commit), both families, session 36's F3 artifacts (synthetic weights 42), DC_GEMM_TUNING=off.
# Predicted: the PNG bytes of H1 / H4 / session 36 (0591d4dd5d29..., 721c5f497b1f...); Flux.2 ~2.00 s, Qwen-Image ~1.15 s, by card.
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit, sharp.tar.xz left behind), .gpu/F3; tiny .onnx.data left behind.
set -u
DC_GEMM_TUNING=off NO_BASELINE=1 TIMEOUT_S=300 sh bench/gpu/e2e_pipelines.sh .gpu/F3
grep -E "denoising steps inside|Inside the requests" $OUT/bench-e2e.md | cut -c1-400
