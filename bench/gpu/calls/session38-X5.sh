#!/bin/sh
# Session 38 call X5, at 19c2d5a (the runtime as packed there): (1) call X4's tiny Qwen-Image pipeline
# against diffusers (its real weights.bin files read once, with the fix a8266d9 after X4); (2) session 37's H9, `npx bench
# --e2e --no-baseline` at 1024x1024 over session 36's F3 artifacts (synthetic weights 42, DC_GEMM_TUNING=off); (3) `npx serve`
# started on each F3 pipeline until ready, its new start timings read from the log, then SIGTERM.
# Predicted: (1) as X4 (cosine >= 0.9999993, PSNR 56.7-57.1 dB); (2) H9's PNG bytes (0591d4dd5d29..., 721c5f497b1f...),
# Flux.2 ~2.00 s, Qwen-Image ~1.15 s, by card; (3) ready in about 10 s (session 32's S1: 10.0 / 9.0 s with GEMM tuning on).
# carry: .gpu/rt (npx tsx runtime/gpu/pack.ts at this commit, then pipeline-fidelity.mjs bundled by esbuild; sharp.tar.xz
# left behind), .gpu/F3, .gpu/X4/qwen_image.tar.xz; tiny .onnx.data left behind.
set -u
nvidia-smi --query-gpu=name,serial,driver_version --format=csv,noheader | head -1 | tee $OUT/gpu.txt
xz -dc .gpu/rt/node.xz > /tmp/node && chmod +x /tmp/node
mkdir -p /tmp/x5 && tar -xJf .gpu/X4/qwen_image.tar.xz -C /tmp/x5
timeout 120 /tmp/node .gpu/rt/pipeline-fidelity.mjs /tmp/x5/qwen_image test/fixtures/pipeline_reference qwen_image qwen_image_cfg qwen_image_cfg_80x48 qwen_image_cfg_48x80 > $OUT/tiny-qwen.txt 2>&1; echo "tiny qwen_image rc $?"
grep -E "^\{" $OUT/tiny-qwen.txt | cut -c1-200
DC_GEMM_TUNING=off NO_BASELINE=1 TIMEOUT_S=300 sh bench/gpu/e2e_pipelines.sh .gpu/F3
for a in flux2-dev qwen-image; do
  sh .gpu/rt/run.sh serve /tmp/art/$a --synthetic-weights 42 --port 8123 > $OUT/serve-$a.log 2>&1 &
  pid=$!
  for i in $(seq 1 120); do grep -q '"msg":"ready"' $OUT/serve-$a.log && break; sleep 1; done
  kill -TERM $pid; wait $pid; echo "serve $a exit $?"
  grep -E '"msg":"(pipeline loaded|ready|warmed up every module)"' $OUT/serve-$a.log | cut -c1-400
done
