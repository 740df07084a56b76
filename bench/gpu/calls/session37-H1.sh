#!/bin/sh
# Session 37 call H1: where Flux.2's denoise stage spends the ~36 ms it takes beyond 8 x the step's graph alone (call F3:
# 1921.2 ms against 8 x 235.69). `npx bench --e2e --no-baseline` at 1024x1024 over session 36's F3 artifacts (both families),
# now with each step's device time from the device loop's events (its note), then bench/gpu/encode-stage.ts for Flux.2 (8
# requests: text encode, denoise beside its steps' device times, VAE decode).
# Predicted: steps inside a request 235-238 ms, the first 1-3 ms longer (it holds the prompt embeddings' 15.7 MB upload).
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit + encode-stage.mjs, sharp.tar.xz left behind), .gpu/F3;
# tiny .onnx.data left behind.
set -u
DC_GEMM_TUNING=off NO_BASELINE=1 TIMEOUT_S=400 sh bench/gpu/e2e_pipelines.sh .gpu/F3
grep -E "denoising steps inside" $OUT/bench-e2e.md | cut -c1-400
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
DC_GEMM_TUNING=off timeout 150 /tmp/node .gpu/rt/encode-stage.mjs /tmp/art/flux2-dev --requests 8 2>&1 | grep -v "^weights\|^GEMM\|^device:" | tee $OUT/encode-stage-flux2.txt | cut -c1-400
